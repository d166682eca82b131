package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// rateFlag is a chat.Rate on the command line: N/PERIOD, or 0 for unlimited.
type rateFlag struct{ r *chat.Rate }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	return f.r.String()
}

func (f rateFlag) Set(s string) error {
	r, err := chat.ParseRate(s)
	if err != nil {
		return err
	}
	*f.r = r
	return nil
}

// prefixesFlag is a comma-separated list of addresses and CIDRs; empty is none.
type prefixesFlag struct{ p *[]netip.Prefix }

func (f prefixesFlag) String() string {
	if f.p == nil {
		return ""
	}
	var out []string
	for _, p := range *f.p {
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

func (f prefixesFlag) Set(s string) error {
	out := []netip.Prefix{} // not nil: an empty list means none, not the default
	for _, v := range splitList(s) {
		if v == "none" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return fmt.Errorf("%q is neither an address nor a CIDR", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	*f.p = out
	return nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
