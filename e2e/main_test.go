// Package e2e holds dockgate's end-to-end tests: the real dockgate binary,
// the real docker CLI and real, private dockerd instances from
// internal/dockertest. They run under ./scripts/test, or by hand as root
// with DOCKGATE_INTEGRATION=1 go test ./e2e/.
package e2e

import (
	"testing"

	"github.com/dockgate/dockgate/internal/dockertest"
)

func TestMain(m *testing.M) { dockertest.Main(m) }
