package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HTTPPolicy says where the http steps and http side effects of an engine
// may connect, so that workflow definitions cannot be used to probe the
// network the server runs in. `ordo server` applies one to its engine's
// HTTP client; a library engine ([ordo.Open]) has none unless its
// [ordo.Config.HTTPClient] is made with [HTTPPolicy.Client].
//
// The address a name resolves to is checked when the connection is made
// (after DNS), so a name that resolves to a private address is refused as
// that address would be. A refused call fails its step or side effect at
// once, without retries, with the error code host_not_allowed.
type HTTPPolicy struct {
	// AllowHosts, when not empty, lists where calls may go; anything else
	// is refused. An entry is a host name or IP address ("api.example.com",
	// "10.0.0.7"), optionally with a port ("api.example.com:8443",
	// "[fd00::1]:80"); a wildcard "*.example.com" matches every name under
	// example.com (not example.com itself); a CIDR prefix ("10.1.0.0/16")
	// matches the addresses in it. Names are compared case-insensitively.
	//
	// An entry that names one host exactly, or a CIDR prefix, also allows
	// it when its address is private or loopback: naming a host is how an
	// internal service is let in. A wildcard does not.
	AllowHosts []string
	// AllowPrivate allows every loopback (127.0.0.0/8, ::1), private
	// (RFC 1918, fc00::/7 ULA, 100.64.0.0/10), link-local (169.254.0.0/16,
	// fe80::/10, which holds cloud metadata services), multicast and
	// unspecified address. Refused by default.
	AllowPrivate bool
	// AllowLoopback allows loopback addresses only (what `ordo dev` sets).
	AllowLoopback bool
}

// hostPattern is one parsed AllowHosts entry.
type hostPattern struct {
	host     string // lower case; for a wildcard, the suffix with its dot (".example.com")
	wildcard bool
	port     string // "" for any port
	prefix   netip.Prefix
}

// parse parses the AllowHosts entries.
func (p *HTTPPolicy) parse() ([]hostPattern, error) {
	out := make([]hostPattern, 0, len(p.AllowHosts))
	for _, entry := range p.AllowHosts {
		e := strings.TrimSpace(entry)
		if e == "" {
			return nil, errors.New("http.allowHosts: an entry is empty")
		}
		if pfx, err := netip.ParsePrefix(e); err == nil {
			out = append(out, hostPattern{prefix: pfx.Masked()})
			continue
		}
		hp := hostPattern{host: e}
		if h, port, err := net.SplitHostPort(e); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("http.allowHosts: %q: port %q is not a number from 1 to 65535", entry, port)
			}
			hp.host, hp.port = h, port
		} else if strings.Count(e, ":") == 1 {
			return nil, fmt.Errorf("http.allowHosts: %q: %v", entry, err)
		}
		hp.host = strings.ToLower(strings.Trim(hp.host, "[]"))
		if rest, ok := strings.CutPrefix(hp.host, "*."); ok {
			hp.wildcard, hp.host = true, "."+rest
		}
		check := strings.TrimPrefix(hp.host, ".")
		if check == "" || strings.ContainsAny(check, "*/ \t@") {
			return nil, fmt.Errorf("http.allowHosts: %q is not a host, host:port, *.domain or CIDR prefix", entry)
		}
		out = append(out, hp)
	}
	return out, nil
}

// Validate reports an AllowHosts entry that is not well formed.
func (p *HTTPPolicy) Validate() error {
	_, err := p.parse()
	return err
}

// HostNotAllowedError is the error of a call the policy refused.
type HostNotAllowedError struct {
	// Host is the host:port the call was for, Addr the address it resolved
	// to ("" when refused by name).
	Host, Addr string
	Reason     string
}

func (e *HostNotAllowedError) Error() string {
	if e.Addr != "" {
		return fmt.Sprintf("host_not_allowed: %s (%s) is not allowed: %s", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("host_not_allowed: %s is not allowed: %s", e.Host, e.Reason)
}

// Retryable reports false: the same call would be refused again.
func (e *HostNotAllowedError) Retryable() bool { return false }

// ErrorCode returns "host_not_allowed", the code journaled for the step.
func (e *HostNotAllowedError) ErrorCode() string { return "host_not_allowed" }

// Transport returns an HTTP transport that applies the policy when it
// connects. It uses no proxy: a proxy would make the checked address the
// proxy's. It returns an error for a malformed AllowHosts entry.
func (p *HTTPPolicy) Transport() (*http.Transport, error) {
	patterns, err := p.parse()
	if err != nil {
		return nil, err
	}
	allowPrivate, allowLoopback := p.AllowPrivate, p.AllowLoopback
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		named, exact, anyPrefix := false, false, false
		for _, hp := range patterns {
			switch {
			case hp.prefix.IsValid():
				anyPrefix = true
			case hp.port != "" && hp.port != port:
			case hp.wildcard && strings.HasSuffix(host, hp.host):
				named = true
			case !hp.wildcard && hp.host == host:
				named, exact = true, true
			}
		}
		if len(patterns) > 0 && !named && !anyPrefix {
			return nil, &HostNotAllowedError{Host: addr, Reason: "not in http.allowHosts"}
		}
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &HostNotAllowedError{Host: addr, Addr: address, Reason: "cannot check the address"}
			}
			ip := ap.Addr().Unmap()
			inPrefix := false
			for _, hp := range patterns {
				if hp.prefix.IsValid() && hp.prefix.Contains(ip) {
					inPrefix = true
				}
			}
			if len(patterns) > 0 && !named && !inPrefix {
				return &HostNotAllowedError{Host: addr, Addr: ip.String(), Reason: "not in http.allowHosts"}
			}
			if special := specialAddress(ip); special != "" && !allowPrivate && !exact && !inPrefix &&
				!(allowLoopback && ip.IsLoopback()) {
				return &HostNotAllowedError{Host: addr, Addr: ip.String(), Reason: special + " addresses are refused (allow them with http.allowPrivate, or name the host in http.allowHosts)"}
			}
			return nil
		}
		return d.DialContext(ctx, network, addr)
	}
	return t, nil
}

// Client returns an HTTP client with the policy's [HTTPPolicy.Transport]
// and a timeout per call (30 seconds when 0).
func (p *HTTPPolicy) Client(timeout time.Duration) (*http.Client, error) {
	t, err := p.Transport()
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{Transport: t, Timeout: timeout}, nil
}

// Address ranges that are private without Go saying so.
var (
	sharedPrefix = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, RFC 6598
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")     // RFC 1122
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")  // IPv4 embedded in IPv6, RFC 6052
	ietfPrefix   = netip.MustParsePrefix("192.0.0.0/24")  // IETF protocol assignments
	benchPrefix  = netip.MustParsePrefix("198.18.0.0/15") // benchmarking, RFC 2544
	sitePrefix   = netip.MustParsePrefix("fec0::/10")     // deprecated site-local
)

// specialAddress names the kind of a non-public address, or returns "" for
// a public one.
func specialAddress(ip netip.Addr) string {
	if nat64Prefix.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return "unspecified"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsPrivate() || sharedPrefix.Contains(ip) || sitePrefix.Contains(ip):
		return "private"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ietfPrefix.Contains(ip) || benchPrefix.Contains(ip) || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "reserved"
	}
	return ""
}
