// Package query parses Floe's SQL dialect — a SELECT subset whose text
// runs unchanged on DuckDB — and compiles its expressions to programs
// evaluated over Arrow records.
//
// It imports only arrow-go and internal packages; it never imports
// aggregate, transform, reader or writer (they import it).
package query
