package testutil

import (
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL opens a pool for dsn with short timeouts filled in where the DSN has
// none: dial 2 s, read/write 5 s. The DSN timeout covers only the dial; a
// query to a hung server blocks forever without read/write timeouts. The pool
// is closed at cleanup. It does not ping: tests also point it at dead servers.
func MySQL(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("MySQL: bad DSN: %v", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("MySQL: %v", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(8)
	db.SetConnMaxLifetime(time.Minute)
	t.Cleanup(func() { db.Close() })
	return db
}
