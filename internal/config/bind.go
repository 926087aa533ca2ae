package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Field ties one field of a server's Config struct to the setting that backs it, so that
// the registry is the one place where defaults are written. [Fill] gives an unset field its
// setting's value; [Check] runs the setting's validator on a field's value; [Store] writes
// the fields into their settings, so /config and /configs show what the server runs with.
//
// What "unset" means depends on the field's type: the empty string, a nil list, a zero
// duration or count (settings whose zero is not a valid value), or a nil pointer for the
// settings where zero is a real value (0 turns a feature off, or is a valid id).
type Field struct {
	name  string
	unset func() bool
	fill  func()
	// check validates the field's value against the setting; store writes it.
	check, store func() error
}

// Fill sets every unset field from its setting.
func Fill(fields ...Field) {
	for _, f := range fields {
		if f.unset() {
			f.fill()
		}
	}
}

// Check validates every set field with its setting's validator; the error names each
// setting that refused its field.
func Check(fields ...Field) error {
	var errs []error
	for _, f := range fields {
		if f.unset() {
			continue
		}
		if err := f.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// Store writes every set field into its setting (call [Check] first: Store fails on the
// values Check refuses).
func Store(fields ...Field) error {
	var errs []error
	for _, f := range fields {
		if f.unset() {
			continue
		}
		if err := f.store(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

func field[T Kind](v *Value[T], unset func() bool, get func() T, fill func(T)) Field {
	return Field{
		name:  v.name,
		unset: unset,
		fill:  func() { fill(v.Get()) },
		check: func() error { return v.validate(get()) },
		store: func() error { return v.set(get()) },
	}
}

// BindString binds a string field; "" is unset.
func BindString(f *string, v *Value[string]) Field {
	return field(v, func() bool { return *f == "" }, func() string { return *f }, func(x string) { *f = x })
}

// BindList binds a list field to a comma-separated string setting; an empty list is unset.
// Filling it splits the setting at commas and drops empty items.
func BindList(f *[]string, v *Value[string]) Field {
	return field(v, func() bool { return len(*f) == 0 }, func() string { return strings.Join(*f, ",") },
		func(x string) { *f = SplitList(x) })
}

// SplitList splits a comma-separated list, trimming spaces and dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// BindDuration binds a duration field to an integer setting counted in unit (time.Millisecond
// for a setting named *_ms); zero is unset, and a set duration must be a whole, positive
// number of units.
func BindDuration(f *time.Duration, v *Value[uint32], unit time.Duration) Field {
	fl := field(v, func() bool { return *f == 0 }, func() uint32 { return uint32(*f / unit) },
		func(x uint32) { *f = time.Duration(x) * unit })
	inner := fl.check
	fl.check = func() error {
		if err := wholeUnits(*f, unit); err != nil {
			return err
		}
		return inner()
	}
	return fl
}

// BindOptionalDuration binds a duration field whose zero is a real value (it typically turns a
// feature off); nil is unset.
func BindOptionalDuration(f **time.Duration, v *Value[uint32], unit time.Duration) Field {
	fl := field(v, func() bool { return *f == nil }, func() uint32 { return uint32(**f / unit) },
		func(x uint32) { d := time.Duration(x) * unit; *f = &d })
	inner := fl.check
	fl.check = func() error {
		if **f != 0 {
			if err := wholeUnits(**f, unit); err != nil {
				return err
			}
		}
		return inner()
	}
	return fl
}

func wholeUnits(d, unit time.Duration) error {
	if d < 0 || d%unit != 0 || d/unit > 1<<32-1 {
		return fmt.Errorf("%w: %v is not a whole number of %v in [0, 2^32)", ErrInvalid, d, unit)
	}
	return nil
}

// integer is the field types [BindCount] and [BindOptional] bind to unsigned integer settings.
type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// BindCount binds an integer field whose zero is not a valid value; zero is unset.
func BindCount[F integer, T uint32 | uint64](f *F, v *Value[T]) Field {
	fl := field(v, func() bool { return *f == 0 }, func() T { return T(*f) }, func(x T) { *f = F(x) })
	inner := fl.check
	fl.check = func() error {
		if err := fits[F, T](*f); err != nil {
			return err
		}
		return inner()
	}
	return fl
}

// BindOptional binds an integer field whose zero is a real value; nil is unset.
func BindOptional[F integer, T uint32 | uint64](f **F, v *Value[T]) Field {
	fl := field(v, func() bool { return *f == nil }, func() T { return T(**f) }, func(x T) { y := F(x); *f = &y })
	inner := fl.check
	fl.check = func() error {
		if err := fits[F, T](**f); err != nil {
			return err
		}
		return inner()
	}
	return fl
}

// fits reports whether x, a field's value, is representable in the setting's type T.
func fits[F integer, T uint32 | uint64](x F) error {
	if x < 0 || F(T(x)) != x || uint64(T(x)) != uint64(x) {
		return fmt.Errorf("%w: %s out of range", ErrInvalid, strconv.FormatInt(int64(x), 10))
	}
	return nil
}

// BindBool binds a bool field; false is unset, so a setting that is true wins over a field
// left false (a Config can turn a switch on, and leave it to the setting otherwise).
func BindBool(f *bool, v *Value[bool]) Field {
	return field(v, func() bool { return !*f }, func() bool { return *f }, func(x bool) { *f = x })
}
