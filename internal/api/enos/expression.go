package enos

import (
	"slices"
	"strings"
	"unicode"

	"github.com/updraft-ota/updraft/internal/ota"
)

// condition is one term of a search expression: field = value, or field in
// (values…).
type condition struct {
	field  string
	op     string // "=", "in" or "like"
	values []string
	locale string // of a localizedName field: the locale it names
}

// localizedName stands, in a search's allowed fields, for name.<locale>: the
// name in any well-formed locale (ota.CheckLocale), such as name.en_US.
const localizedName = "name.<locale>"

// parseExpression reads EnOS's filter language: terms joined by AND, each
// `field = 'v'`, `field in ('a', "b")` or `field like 'v'`; values are
// single- or double-quoted strings, numbers or booleans. allowed says which
// operators each field takes; anything else is refused, never ignored.
func parseExpression(expr string, allowed map[string][]string) ([]condition, error) {
	l := lexer{s: expr}
	var conds []condition
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	for {
		field := l.word()
		if field == "" {
			return nil, ota.Invalid("expression", "expression %q: expected a field name at offset %d", expr, l.i)
		}
		c := condition{field: field}
		ops, ok := allowed[field]
		if locale, named := strings.CutPrefix(field, "name."); !ok && named && allowed[localizedName] != nil {
			if err := ota.CheckLocale("expression", locale); err != nil {
				return nil, ota.Invalid("expression", "expression %q: field %q: %s", expr, field, ota.ErrorMessage(err))
			}
			ops, ok, c.field, c.locale = allowed[localizedName], true, localizedName, locale
		}
		if !ok {
			return nil, ota.Invalid("expression", "expression %q: field %q cannot be searched; searchable fields: %s", expr, field, fieldNames(allowed))
		}
		l.space()
		switch {
		case l.take("="):
			c.op = "="
			v, err := l.value(expr)
			if err != nil {
				return nil, err
			}
			c.values = []string{v}
		default:
			op := strings.ToLower(l.word())
			switch op {
			case "in":
				c.op = "in"
				l.space()
				if !l.take("(") {
					return nil, ota.Invalid("expression", "expression %q: in needs a parenthesized list", expr)
				}
				for {
					v, err := l.value(expr)
					if err != nil {
						return nil, err
					}
					c.values = append(c.values, v)
					l.space()
					if l.take(")") {
						break
					}
					if !l.take(",") {
						return nil, ota.Invalid("expression", "expression %q: expected , or ) in the in list", expr)
					}
				}
			case "like":
				c.op = "like"
				v, err := l.value(expr)
				if err != nil {
					return nil, err
				}
				c.values = []string{v}
			default:
				return nil, ota.Invalid("expression", "expression %q: operator %q is not supported; use =, in or like", expr, op)
			}
		}
		if !contains(ops, c.op) {
			return nil, ota.Invalid("expression", "expression %q: field %s does not take %s (it takes %s)", expr, field, c.op, strings.Join(ops, ", "))
		}
		// The store matches every name condition of a search in one locale,
		// so names in two locales are refused rather than both read in one.
		if isName(c.field) && nameLocale(conds) != c.locale && slices.ContainsFunc(conds, func(p condition) bool { return isName(p.field) }) {
			return nil, ota.Invalid("expression", "expression %q: conditions on names in different locales cannot be combined: search by the name in one locale", expr)
		}
		conds = append(conds, c)
		l.space()
		if l.i >= len(l.s) {
			return conds, nil
		}
		if strings.ToUpper(l.word()) != "AND" {
			return nil, ota.Invalid("expression", "expression %q: terms are joined with AND (OR is not supported)", expr)
		}
	}
}

func isName(field string) bool {
	return field == "name" || field == "name.defaultValue" || field == localizedName
}

// nameLocale is the locale of a search's name conditions ("" for the default
// name); parseExpression lets them name one locale only.
func nameLocale(conds []condition) string {
	for _, c := range conds {
		if isName(c.field) {
			return c.locale
		}
	}
	return ""
}

func fieldNames(m map[string][]string) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type lexer struct {
	s string
	i int
}

func (l *lexer) space() {
	for l.i < len(l.s) && unicode.IsSpace(rune(l.s[l.i])) {
		l.i++
	}
}

func (l *lexer) take(tok string) bool {
	l.space()
	if strings.HasPrefix(l.s[l.i:], tok) {
		l.i += len(tok)
		return true
	}
	return false
}

// word reads a field name (letters, digits, _ and . as in name.en_US).
func (l *lexer) word() string {
	l.space()
	start := l.i
	for l.i < len(l.s) {
		c := rune(l.s[l.i])
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' && c != '.' {
			break
		}
		l.i++
	}
	return l.s[start:l.i]
}

func (l *lexer) value(expr string) (string, error) {
	l.space()
	if l.i < len(l.s) && (l.s[l.i] == '\'' || l.s[l.i] == '"') {
		q := l.s[l.i]
		end := strings.IndexByte(l.s[l.i+1:], q)
		if end < 0 {
			return "", ota.Invalid("expression", "expression %q: unterminated string", expr)
		}
		v := l.s[l.i+1 : l.i+1+end]
		l.i += end + 2
		return v, nil
	}
	v := l.word()
	if v == "" {
		return "", ota.Invalid("expression", "expression %q: expected a value at offset %d", expr, l.i)
	}
	return v, nil
}

// likeText is the text a `like` value asks names to contain: EnOS's like is
// a fuzzy (substring) match, and a value written SQL-style with surrounding
// '%' means the same. Other wildcards are matched literally.
func likeText(v string) string { return strings.Trim(v, "%") }
