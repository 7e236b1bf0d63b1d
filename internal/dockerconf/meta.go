package dockerconf

import (
	"encoding/json"
	"errors"
	"fmt"
)

// dockerEndpoint is the endpoint name the docker CLI uses for the engine API
// (docker.DockerEndpoint in docker/cli); TLS files live in a directory of
// that name too.
const dockerEndpoint = "docker"

// contextMeta mirrors store.Metadata in docker/cli with the docker endpoint
// typed: encoding/json writes struct fields in declaration order, so this
// produces the bytes `docker context create` writes.
type contextMeta struct {
	Name      string
	Metadata  contextDescription
	Endpoints map[string]endpointMeta
}

// contextDescription mirrors command.DockerContext in docker/cli.
type contextDescription struct {
	Description string `json:",omitempty"`
}

// endpointMeta mirrors context.EndpointMetaBase in docker/cli.
type endpointMeta struct {
	Host          string `json:",omitempty"`
	SkipTLSVerify bool
}

// MarshalMeta renders a context's meta.json as the docker CLI writes it
// (compact JSON, no trailing newline). TLS material is not part of it.
func MarshalMeta(c Context) ([]byte, error) {
	m := contextMeta{
		Name:     c.Name,
		Metadata: contextDescription{Description: c.Description},
		Endpoints: map[string]endpointMeta{
			dockerEndpoint: {Host: c.Host, SkipTLSVerify: c.SkipTLSVerify},
		},
	}
	return json.Marshal(m)
}

// ParseMeta reads a meta.json written by the docker CLI or MarshalMeta into a
// Context without TLS material. Unknown metadata fields are ignored, as the
// docker CLI does for fields it does not know.
func ParseMeta(data []byte) (Context, error) {
	var m struct {
		Name      string
		Metadata  json.RawMessage
		Endpoints map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Context{}, fmt.Errorf("failed to parse context metadata: %w", err)
	}
	if m.Name == "" {
		return Context{}, errors.New("failed to parse context metadata: it has no name")
	}
	c := Context{Name: m.Name}
	if err := unmarshalOptional(m.Metadata, &contextDescription{}, func(d *contextDescription) {
		c.Description = d.Description
	}); err != nil {
		return Context{}, fmt.Errorf("failed to parse metadata of context %q: %w", m.Name, err)
	}
	if err := unmarshalOptional(m.Endpoints[dockerEndpoint], &endpointMeta{}, func(e *endpointMeta) {
		c.Host, c.SkipTLSVerify = e.Host, e.SkipTLSVerify
	}); err != nil {
		return Context{}, fmt.Errorf("failed to parse docker endpoint of context %q: %w", m.Name, err)
	}
	return c, nil
}

// unmarshalOptional decodes raw into v and hands it to set, unless raw is
// absent or null, which the docker CLI treats as "not set".
func unmarshalOptional[T any](raw json.RawMessage, v *T, set func(*T)) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	set(v)
	return nil
}
