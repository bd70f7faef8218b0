// Package iotsql is the AWS IoT SQL dialect (SQL version 2016-03-23) as
// fleetgate's rules speak it: the lexer (lex.go), the parser (parse.go) into
// an immutable tree (ast.go), the evaluator (eval.go) over the value model of
// value.go, substitution templates (template.go), MQTT topic filters
// (filter.go), and the functions, one file per family (time.go, message.go,
// strings.go, types.go, math.go, bits.go, regexp.go, crypto.go, encoding.go,
// defaults.go).
//
// A Compiler compiles statements, templates and foreach clauses with a
// Registry of functions (the built-in ones, and those registered with a
// Function whose Compile takes the Deps it needs, such as lookup tables).
// What it compiles is immutable and safe for concurrent use; each message is
// evaluated with its own Env.
package iotsql
