package router

import "github.com/fleetgate/fleetgate/router/iotsql"

// Message is one incoming message as the rule engine sees it (see
// iotsql.Message, which the SQL functions read).
type Message = iotsql.Message

// SyntaxError is the error of a rule's SQL, foreach clause or template, with
// its position (see iotsql.SyntaxError).
type SyntaxError = iotsql.SyntaxError
