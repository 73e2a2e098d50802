package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openapiJSON is the hand-written OpenAPI 3 description of the API. A test
// checks that every route gin serves is in it, with its method.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI document (for the CLI and tests).
func OpenAPI() []byte { return openapiJSON }

func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openapiJSON)
}
