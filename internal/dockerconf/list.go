package dockerconf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// ContextNames lists the contexts in configDir's context store, sorted;
// a store that does not exist yet has none. Metadata that cannot be read
// is skipped, as `docker context ls` lists what it can.
func ContextNames(configDir string) ([]string, error) {
	dir := filepath.Join(configDir, contextsDir, metaDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), metaFile))
		if err != nil {
			continue
		}
		if c, err := ParseMeta(data); err == nil {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}
