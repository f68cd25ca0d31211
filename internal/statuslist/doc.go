// Package statuslist publishes tegata's revocations as IETF Token Status
// Lists (draft-ietf-oauth-status-list-21): List is the draft's bit array and
// its compressed form; Publisher builds each list from the revocation log
// and serves it as a signed Status List Token.
//
// Concurrency: a List is not safe for concurrent use; a Publisher is.
package statuslist
