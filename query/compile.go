package query

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Compile binds e to schema, resolving column references through
// resolve (nil: by field name, qualifier ignored), type-checks it and
// returns the program that evaluates it.
func Compile(e Expr, schema *arrow.Schema, resolve Resolver) (*Program, error) {
	return nil, fmt.Errorf("compile %s: %w: not implemented yet", e, ErrType)
}
