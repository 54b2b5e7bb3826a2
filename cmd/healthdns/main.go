// Command healthdns is CoreDNS with a curated set of plugins plus healthdns.
// Without -conf and without a Corefile in the working directory it serves
// the embedded Corefile.example.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The curated upstream plugins; healthdns is placed among them below.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/any"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/bufsize"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/cancel"
	_ "github.com/coredns/coredns/plugin/chaos"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/dnssec"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/geoip"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/minimal"
	_ "github.com/coredns/coredns/plugin/multisocket"
	_ "github.com/coredns/coredns/plugin/nsid"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/timeouts"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/healthdns/healthdns"
	"github.com/healthdns/healthdns/internal/memlimit"
	hdns "github.com/healthdns/healthdns/plugin/healthdns"
	"github.com/healthdns/healthdns/plugin/healthdns/version"
)

// directives is the execution order. healthdns sits just before file, so
// cache, dnssec and log wrap it.
var directives = []string{
	"root", "metadata", "geoip", "cancel", "timeouts", "multisocket", "reload", "nsid", "bufsize", "bind", "debug",
	"ready", "health", "pprof", "prometheus", "errors", "log", "any", "chaos",
	"acl", "cache", "dnssec", "minimal", "healthdns", "file", "whoami",
}

func init() {
	if !slices.Contains(dnsserver.Directives, "file") {
		panic("coredns directive list has no file plugin")
	}
	if err := dnsserver.SetDirectives(directives); err != nil {
		panic(err)
	}
}

func main() {
	// CoreDNS's banner and the chaos plugin's version.bind say which
	// healthdns this is, and on which CoreDNS.
	caddy.AppName, caddy.AppVersion = "healthdns", version.Get().Short()
	// coremain's -version prints only AppName-AppVersion; ours prints the
	// commit and build date too. Parsing twice is harmless: coremain.Run
	// parses the same flags again.
	flag.Parse()
	if f := flag.Lookup("version"); f != nil && f.Value.String() == "true" {
		fmt.Print("healthdns ", version.Get())
		os.Exit(0)
	}
	if line := memlimit.Set(); line != "" {
		fmt.Fprintln(os.Stderr, line)
	}
	caddy.SetDefaultCaddyfileLoader("healthdns", caddy.LoaderFunc(defaultCorefile))
	// coremain's -plugins lists every plugin linked in, some only as a
	// dependency (transfer, metadata) and refused in a Corefile as
	// "Unknown directive"; list those that work instead. coremain.Run
	// parses the same flags again.
	flag.Parse()
	if f := flag.Lookup("plugins"); f != nil && f.Value.String() == "true" {
		fmt.Print(strings.Join(usablePlugins(), "\n") + "\n")
		return
	}
	coremain.Run()
}

// usablePlugins are the plugins a Corefile may name: registered and in the
// directive list, in alphabetical order.
func usablePlugins() []string {
	var out []string
	for _, name := range caddy.ListPlugins()["others"] {
		name = strings.TrimPrefix(name, "dns.")
		if slices.Contains(dnsserver.Directives, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// defaultCorefile is used when -conf is not given: ./Corefile as CoreDNS
// does, else the embedded example with its zone files.
func defaultCorefile(serverType string) (caddy.Input, error) {
	if b, err := os.ReadFile(caddy.DefaultConfigFile); err == nil {
		return caddy.CaddyfileInput{Contents: b, Filepath: caddy.DefaultConfigFile, ServerTypeName: serverType}, nil
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	b, err := fs.ReadFile(healthdns.Defaults, "Corefile.example")
	if err != nil {
		return nil, fmt.Errorf("embedded Corefile.example: %w", err)
	}
	hdns.ZoneFS = healthdns.Defaults
	return caddy.CaddyfileInput{Contents: b, Filepath: "Corefile.example (embedded)", ServerTypeName: serverType}, nil
}
