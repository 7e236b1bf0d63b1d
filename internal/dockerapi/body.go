package dockerapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/moby/moby/api/types/checkpoint"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/plugin"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/volume"
)

// ContainerCreate is a decoded POST /containers/create body.
//
// Current engines decode the body as container.CreateRequest: the Config
// fields at the top level, a "HostConfig" object and a "NetworkingConfig"
// object. Engines before 27.0 (API 1.46) decoded it into a wrapper that
// also embedded a second HostConfig at the top level: when the body had no
// "HostConfig" object, HostConfig fields written beside the Config fields
// ({"Image":"x","Privileged":true,"Binds":["/:/host"]}) became the
// container's host config. ContainerCreate decodes the body into that same
// wrapper, so a policy sees both, and Encode writes both back.
type ContainerCreate struct {
	// Config is the portable container configuration; never nil (dockerd
	// refuses a body without one).
	Config *container.Config
	// HostConfig is the "HostConfig" object; never nil: an absent one
	// decodes as empty, as dockerd treats it, and Encode then writes an
	// explicit one (which also stops older engines from using
	// LegacyHostConfig in its place).
	HostConfig *container.HostConfig
	// NetworkingConfig is the "NetworkingConfig" object, nil when absent.
	NetworkingConfig *network.NetworkingConfig
	// LegacyHostConfig holds HostConfig fields written at the top level of
	// the body; nil when there are none. Engines before 27.0 honoured them
	// when the body had no "HostConfig", and merged Memory, MemorySwap,
	// CpuShares, CpusetCpus and VolumeDriver from them otherwise. Check it
	// like HostConfig: see HostConfigs.
	LegacyHostConfig *container.HostConfig
	// LegacyCpuset is the top-level "Cpuset" older engines copied into
	// HostConfig.CpusetCpus.
	LegacyCpuset string
	// LegacyMacAddress is the container-wide "MacAddress" that engines
	// before API 1.52 still read from the body.
	LegacyMacAddress network.HardwareAddr
}

// createWire is the JSON layout of a create body as older engines read it
// (runconfig.ContainerConfigWrapper) plus the MacAddress dockerd still reads
// for API < 1.52. Config and HostConfig share no field names
// (TestCreateWireFieldsDisjoint), so the two embedded structs each receive
// their own fields.
type createWire struct {
	*container.Config
	InnerHostConfig  *container.HostConfig     `json:"HostConfig,omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
	Cpuset           string                    `json:",omitempty"`
	MacAddress       network.HardwareAddr      `json:",omitempty"`
	*container.HostConfig
}

// DecodeContainerCreate checks and decodes a container create body. max
// bounds its size (DefaultMaxBody when max <= 0).
func DecodeContainerCreate(body []byte, max int) (*ContainerCreate, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: a container create body is required", ErrBodyEmpty)
	}
	var w createWire
	if err := decodeChecked(body, max, JSONObject, &w); err != nil {
		return nil, err
	}
	if w.Config == nil {
		return nil, fmt.Errorf("%w: no container configuration (Image, Cmd, ...) at the top level", ErrBodyNotDocker)
	}
	c := &ContainerCreate{
		Config:           w.Config,
		HostConfig:       w.InnerHostConfig,
		NetworkingConfig: w.NetworkingConfig,
		LegacyHostConfig: w.HostConfig,
		LegacyCpuset:     w.Cpuset,
		LegacyMacAddress: w.MacAddress,
	}
	if c.HostConfig == nil {
		c.HostConfig = &container.HostConfig{}
	}
	return c, nil
}

// HostConfigs returns the host configurations an engine may apply: the
// HostConfig object and, when the body has top-level HostConfig fields,
// LegacyHostConfig. A guardrail must pass for each.
func (c *ContainerCreate) HostConfigs() []*container.HostConfig {
	if c.LegacyHostConfig == nil {
		return []*container.HostConfig{c.HostConfig}
	}
	return []*container.HostConfig{c.HostConfig, c.LegacyHostConfig}
}

// SetLabel sets a container label, replacing a client-supplied value of the
// same key (label keys are case-sensitive, so "Dockgate.Owner" is another
// label and stays).
func (c *ContainerCreate) SetLabel(key, value string) {
	c.Config.Labels = WithLabel(c.Config.Labels, key, value)
}

// Encode returns the JSON body to forward: the same values that were
// decoded and inspected (and changed, by SetLabel), in the wire layout.
// Fields dockgate's moby types do not know are dropped, so nothing reaches
// dockerd that was not inspected.
func (c *ContainerCreate) Encode() ([]byte, error) {
	return Encode(c)
}

// MarshalJSON writes the wire layout, so that Encode and encoding/json
// both produce the body dockerd reads.
func (c ContainerCreate) MarshalJSON() ([]byte, error) {
	return Encode(&createWire{
		Config:           c.Config,
		InnerHostConfig:  c.HostConfig,
		NetworkingConfig: c.NetworkingConfig,
		Cpuset:           c.LegacyCpuset,
		MacAddress:       c.LegacyMacAddress,
		HostConfig:       c.LegacyHostConfig,
	})
}

// WithLabel returns labels with key set to value, allocating the map when
// labels is nil: req.Labels = WithLabel(req.Labels, k, v).
func WithLabel(labels map[string]string, key, value string) map[string]string {
	if labels == nil {
		labels = make(map[string]string, 1)
	}
	labels[key] = value
	return labels
}

// DecodeContainerUpdate decodes a POST /containers/{id}/update body. Its
// Resources include Devices, DeviceCgroupRules, DeviceRequests and
// CgroupParent, which a policy checks as on create.
func DecodeContainerUpdate(body []byte, max int) (*container.UpdateConfig, error) {
	return decodeOptional[container.UpdateConfig](body, max)
}

// DecodeExecCreate decodes a POST /containers/{id}/exec body.
func DecodeExecCreate(body []byte, max int) (*container.ExecCreateRequest, error) {
	return decodeOptional[container.ExecCreateRequest](body, max)
}

// DecodeVolumeCreate decodes a POST /volumes/create body.
func DecodeVolumeCreate(body []byte, max int) (*volume.CreateRequest, error) {
	return decodeOptional[volume.CreateRequest](body, max)
}

// DecodeNetworkCreate decodes a POST /networks/create body.
func DecodeNetworkCreate(body []byte, max int) (*network.CreateRequest, error) {
	return decodeOptional[network.CreateRequest](body, max)
}

// DecodeNetworkConnect decodes a POST /networks/{id}/connect body; its
// Container names the container to connect.
func DecodeNetworkConnect(body []byte, max int) (*network.ConnectRequest, error) {
	return decodeOptional[network.ConnectRequest](body, max)
}

// DecodeNetworkDisconnect decodes a POST /networks/{id}/disconnect body.
func DecodeNetworkDisconnect(body []byte, max int) (*network.DisconnectRequest, error) {
	return decodeOptional[network.DisconnectRequest](body, max)
}

// DecodeServiceSpec decodes a POST /services/create or
// /services/{id}/update body. TaskTemplate.ContainerSpec carries the
// service's privileges, capabilities, sysctls and mounts.
func DecodeServiceSpec(body []byte, max int) (*swarm.ServiceSpec, error) {
	return decodeOptional[swarm.ServiceSpec](body, max)
}

// DecodePluginPrivileges decodes the privileges a client grants a plugin in
// a POST /plugins/pull or /plugins/{name}/upgrade body (a JSON array).
func DecodePluginPrivileges(body []byte, max int) (plugin.Privileges, error) {
	var p plugin.Privileges
	if len(body) == 0 {
		return p, nil
	}
	if err := decodeChecked(body, max, JSONArray, &p); err != nil {
		return nil, err
	}
	return p, nil
}

// VolumeUpdate is a PUT /volumes/{name} body (cluster volumes), as dockerd's
// volume.UpdateOptions.
type VolumeUpdate struct {
	Spec *volume.ClusterVolumeSpec `json:"Spec,omitempty"`
}

// CommitRequest is a POST /commit body: an optional container.Config whose
// non-empty fields override the committed container's.
type CommitRequest struct {
	*container.Config
}

// DecodeBody checks and decodes the JSON body of any operation whose Body
// is BodyJSON into the moby type dockerd decodes it into, returned as a
// pointer: *ContainerCreate, *container.UpdateConfig,
// *container.ExecCreateRequest, *container.ExecStartRequest,
// *CommitRequest, *checkpoint.CreateRequest, *network.CreateRequest,
// *network.ConnectRequest, *network.DisconnectRequest,
// *volume.CreateRequest, *VolumeUpdate, *swarm.ServiceSpec,
// *swarm.NodeSpec, *swarm.SecretSpec, *swarm.ConfigSpec,
// *swarm.InitRequest, *swarm.JoinRequest, *swarm.Spec,
// *swarm.UnlockRequest, *plugin.Privileges, *[]string (plugin.set) or
// *registry.AuthConfig (system.auth: it holds a password).
//
// An empty body decodes to the zero value, as dockerd's ReadJSON reads it,
// except for container.create, which needs one. Forward Encode of the
// returned value; for an empty body, forward the empty body.
func DecodeBody(op Operation, body []byte, max int) (any, error) {
	switch op {
	case OpContainerCreate:
		return DecodeContainerCreate(body, max)
	case OpContainerUpdate:
		return DecodeContainerUpdate(body, max)
	case OpContainerExec:
		return DecodeExecCreate(body, max)
	case OpExecStart:
		return decodeOptional[container.ExecStartRequest](body, max)
	case OpContainerCommit:
		return decodeOptional[CommitRequest](body, max)
	case OpCheckpointCreate:
		return decodeOptional[checkpoint.CreateRequest](body, max)
	case OpNetworkCreate:
		return DecodeNetworkCreate(body, max)
	case OpNetworkConnect:
		return DecodeNetworkConnect(body, max)
	case OpNetworkDisconnect:
		return DecodeNetworkDisconnect(body, max)
	case OpVolumeCreate:
		return DecodeVolumeCreate(body, max)
	case OpVolumeUpdate:
		return decodeOptional[VolumeUpdate](body, max)
	case OpServiceCreate, OpServiceUpdate:
		return DecodeServiceSpec(body, max)
	case OpNodeUpdate:
		return decodeOptional[swarm.NodeSpec](body, max)
	case OpSecretCreate, OpSecretUpdate:
		return decodeOptional[swarm.SecretSpec](body, max)
	case OpConfigCreate, OpConfigUpdate:
		return decodeOptional[swarm.ConfigSpec](body, max)
	case OpSwarmInit:
		return decodeOptional[swarm.InitRequest](body, max)
	case OpSwarmJoin:
		return decodeOptional[swarm.JoinRequest](body, max)
	case OpSwarmUpdate:
		return decodeOptional[swarm.Spec](body, max)
	case OpSwarmUnlock:
		return decodeOptional[swarm.UnlockRequest](body, max)
	case OpPluginInstall, OpPluginUpgrade:
		p, err := DecodePluginPrivileges(body, max)
		if err != nil {
			return nil, err
		}
		return &p, nil
	case OpPluginSet:
		return decodeOptionalArray[[]string](body, max)
	case OpSystemAuth:
		return decodeOptional[registry.AuthConfig](body, max)
	}
	return nil, fmt.Errorf("%w: %s takes no JSON body", ErrBodyNotDocker, op)
}

// Encode marshals a decoded body for forwarding, without the HTML escaping
// json.Marshal adds (dockerd reads both the same way).
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("failed to encode body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeOptional decodes an object body into a new T; an empty body gives
// the zero T, as dockerd's httputils.ReadJSON.
func decodeOptional[T any](body []byte, max int) (*T, error) {
	v := new(T)
	if len(body) == 0 {
		return v, nil
	}
	if err := decodeChecked(body, max, JSONObject, v); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeOptionalArray[T any](body []byte, max int) (*T, error) {
	v := new(T)
	if len(body) == 0 {
		return v, nil
	}
	if err := decodeChecked(body, max, JSONArray, v); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeChecked runs CheckJSON and then decodes with encoding/json, as
// dockerd does.
func decodeChecked(body []byte, max int, want JSONKind, v any) error {
	if err := CheckJSON(body, max, want); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBodyNotDocker, err)
	}
	return nil
}
