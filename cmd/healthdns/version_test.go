package main

import (
	"testing"

	"github.com/coredns/coredns/coremain"

	"github.com/healthdns/healthdns/plugin/healthdns/version"
)

// -version, /status and build_info report version.CoreDNS; this binary is
// the one that links CoreDNS, so it must be the CoreDNS it runs.
func TestCoreDNSVersion(t *testing.T) {
	if version.CoreDNS != coremain.CoreVersion {
		t.Errorf("version.CoreDNS is %s, coremain.CoreVersion %s", version.CoreDNS, coremain.CoreVersion)
	}
}
