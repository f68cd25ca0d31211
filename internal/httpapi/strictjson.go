package httpapi

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// errNotStrict is what the strict reader's errors about a request body
// wrap (a name given twice, invalid UTF-8, nesting too deep).
var errNotStrict = errors.New("not strict JSON")

// checkNames refuses what encoding/json lets through although
// docs/security.md calls request decoding strict: a member name given
// twice in one object at any depth (encoding/json keeps the last), and a
// name that matches a field only case-insensitively (encoding/json fills
// the field: {"subject":"alice","SUBJECT":"root"} would create a session
// for root). The body is read by internal/strictjson, the one strict JSON
// reader tegata has (access tokens are read by it too), and its members
// are then held against t, the type the body decodes into; names inside
// maps (app claims) may differ only in case, as claim names are
// case-sensitive.
func checkNames(body []byte, t reflect.Type) error {
	// App claims travel one level down in a body; their own depth is
	// checked against a token's when they are stored.
	m, err := strictjson.DecodeObjectValueWithin(body, "body", errNotStrict, strictjson.MaxDepth+1)
	if err != nil {
		return err
	}
	return checkValue(m, t)
}

// checkValue holds a decoded JSON value against the type it decodes into.
func checkValue(v any, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := v.(type) {
	case map[string]any:
		return checkObject(v, t)
	case []any:
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for _, e := range v {
			if err := checkValue(e, elem); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkObject(m map[string]any, t reflect.Type) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	for name, v := range m {
		vt := elem
		if fields != nil {
			ft, ok := fields[name]
			if !ok {
				return fmt.Errorf("unknown field %q (field names are case-sensitive)", name)
			}
			vt = ft
		}
		if err := checkValue(v, vt); err != nil {
			return err
		}
	}
	return nil
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the exact JSON names of a struct's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}
