package definition

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// parseDuration parses a Go duration ("90s") or an ISO 8601 duration
// ("P1DT12H"). The result is never negative.
func parseDuration(s string) (time.Duration, error) {
	if strings.HasPrefix(s, "P") {
		return parseISODuration(s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use a Go duration such as 90s or 1h30m, or ISO 8601 such as PT2H or P7D)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

// isoUnits are the ISO 8601 designators Ordo accepts, in the order they
// must appear, with the part (date or time) they belong to.
var isoUnits = []struct {
	designator byte
	timePart   bool
	unit       time.Duration
}{
	{'W', false, 7 * 24 * time.Hour},
	{'D', false, 24 * time.Hour},
	{'H', true, time.Hour},
	{'M', true, time.Minute},
	{'S', true, time.Second},
}

// parseISODuration parses PnWnDTnHnMnS. Any component may have a decimal
// fraction. Years and months are rejected because their length varies.
func parseISODuration(s string) (time.Duration, error) {
	invalid := func(why string) error {
		return fmt.Errorf("invalid ISO 8601 duration %q: %s", s, why)
	}
	rest := s[1:]
	if rest == "" || rest == "T" {
		return 0, invalid("no components")
	}
	var (
		total  time.Duration
		inTime bool
		anyInT bool
		next   int // index in isoUnits of the next allowed unit
	)
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, invalid("T appears twice")
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, invalid("nothing after T")
			}
			continue
		}
		n := 0
		for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '.') {
			n++
		}
		if n == 0 || n == len(rest) {
			return 0, invalid("expected a number followed by W, D, H, M or S")
		}
		number, designator := rest[:n], rest[n]
		rest = rest[n+1:]
		if !inTime && (designator == 'Y' || designator == 'M') {
			return 0, invalid("years and months have no fixed length; use days (D) or weeks (W)")
		}
		i := next
		for i < len(isoUnits) && (isoUnits[i].designator != designator || isoUnits[i].timePart != inTime) {
			i++
		}
		if i == len(isoUnits) {
			return 0, invalid(fmt.Sprintf("unexpected %q", designator))
		}
		next = i + 1
		if inTime {
			anyInT = true
		}
		v, err := scaleDecimal(number, isoUnits[i].unit)
		if err != nil {
			return 0, invalid(err.Error())
		}
		if total > math.MaxInt64-v {
			return 0, invalid("too long")
		}
		total += v
	}
	if inTime && !anyInT {
		return 0, invalid("nothing after T")
	}
	return total, nil
}

// scaleDecimal returns the decimal number s ("1", "1.5", ".5") times unit,
// to the nanosecond.
func scaleDecimal(s string, unit time.Duration) (time.Duration, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if strings.Contains(frac, ".") || whole == "" && frac == "" {
		return 0, errors.New("malformed number")
	}
	var w int64
	for _, c := range whole {
		if w > (math.MaxInt64-9)/10 {
			return 0, errors.New("too long")
		}
		w = w*10 + int64(c-'0')
	}
	if w > math.MaxInt64/int64(unit) {
		return 0, errors.New("too long")
	}
	d := time.Duration(w) * unit
	// Add the fraction digit by digit: each digit is worth unit/10^k.
	scale := int64(unit)
	var f int64
	for _, c := range frac {
		scale /= 10
		f += int64(c-'0') * scale
	}
	if d > math.MaxInt64-time.Duration(f) {
		return 0, errors.New("too long")
	}
	return d + time.Duration(f), nil
}
