package main

import (
	"fmt"
	"regexp"
	"strings"
)

// storeKind says which store --db names: "postgres" for a postgres:// or
// postgresql:// URL or a PostgreSQL keyword string (host=... dbname=...),
// "sqlite" for a file path. Anything else — another URL scheme, a keyword
// string with a word PostgreSQL does not know — is refused, so that a typo
// never silently becomes a SQLite file named after it.
func storeKind(db string) (string, error) {
	switch {
	case db == "":
		return "sqlite", nil
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", nil
	case strings.Contains(db, "://"):
		scheme, _, _ := strings.Cut(db, "://")
		return "", fmt.Errorf("--db: %q stores are not supported: use a postgres:// URL, a PostgreSQL keyword string (host=... dbname=...) or a SQLite file path", scheme)
	case strings.Contains(db, "="):
		for _, m := range pgKeyword.FindAllStringSubmatch(pgQuoted.ReplaceAllString(db, "''"), -1) {
			if key := m[1]; !pgKeywords[key] {
				return "", fmt.Errorf("--db: %q is not a PostgreSQL keyword (host, port, dbname, user, password, sslmode, ...): give a postgres:// URL, a keyword string or a SQLite file path", key)
			}
		}
		return "postgres", nil
	}
	return "sqlite", nil
}

// pgKeyword finds the keys of a keyword string, a word before '=' at the
// start or after a space, once pgQuoted has emptied the quoted values.
var pgQuoted = regexp.MustCompile(`'(?:[^'\\]|\\.)*'`)
var pgKeyword = regexp.MustCompile(`(?:^|\s)([^\s=']+)\s*=`)

// pgKeywords are the libpq connection keywords pgx understands
// (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
var pgKeywords = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "password": true,
	"passfile": true, "connect_timeout": true, "sslmode": true, "sslkey": true, "sslcert": true,
	"sslrootcert": true, "sslpassword": true, "sslsni": true, "application_name": true,
	"target_session_attrs": true, "search_path": true, "options": true, "service": true, "servicefile": true,
	"pool_max_conns": true, "pool_min_conns": true, "pool_max_conn_lifetime": true, "pool_max_conn_idle_time": true,
	"statement_cache_capacity": true, "default_query_exec_mode": true,
}
