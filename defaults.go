// Package healthdns holds what the healthdns binary runs when it is given
// no Corefile: Corefile.example and the zone files it names, embedded so
// that a fresh build answers dig at once.
package healthdns

import "embed"

// Defaults holds Corefile.example and zones/.
//
//go:embed Corefile.example zones
var Defaults embed.FS
