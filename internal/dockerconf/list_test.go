package dockerconf

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestContextNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	if names, err := ContextNames(dir); err != nil || names != nil {
		t.Fatalf("ContextNames(no store) = %v, %v; want none", names, err)
	}
	for _, name := range []string{"prod", "dev"} {
		if err := WriteContext(dir, testContext(t, name), false); err != nil {
			t.Fatal(err)
		}
	}
	names, err := ContextNames(dir)
	if err != nil || !slices.Equal(names, []string{"dev", "prod"}) {
		t.Errorf("ContextNames() = %v, %v; want [dev prod]", names, err)
	}
}
