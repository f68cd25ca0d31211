// Package httpapi is the authority's HTTP surface: routes, API key
// authentication, strict request decoding and the one error path that logs
// a cause and answers the client with a stable {"error","error_description"}.
//
// The handler returned by New is safe for concurrent use.
package httpapi
