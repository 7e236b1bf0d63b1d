package dockerapi

import "strings"

// AllCapabilities is the CapAdd value that adds every capability.
const AllCapabilities = "ALL"

// capabilities are the Linux capabilities dockerd accepts in CapAdd and
// CapDrop (moby's caps.GetAllCapabilities on current kernels: capability
// numbers 0 to 40, CAP_CHOWN to CAP_CHECKPOINT_RESTORE).
var capabilities = map[string]bool{
	"CAP_CHOWN": true, "CAP_DAC_OVERRIDE": true, "CAP_DAC_READ_SEARCH": true,
	"CAP_FOWNER": true, "CAP_FSETID": true, "CAP_KILL": true, "CAP_SETGID": true,
	"CAP_SETUID": true, "CAP_SETPCAP": true, "CAP_LINUX_IMMUTABLE": true,
	"CAP_NET_BIND_SERVICE": true, "CAP_NET_BROADCAST": true, "CAP_NET_ADMIN": true,
	"CAP_NET_RAW": true, "CAP_IPC_LOCK": true, "CAP_IPC_OWNER": true,
	"CAP_SYS_MODULE": true, "CAP_SYS_RAWIO": true, "CAP_SYS_CHROOT": true,
	"CAP_SYS_PTRACE": true, "CAP_SYS_PACCT": true, "CAP_SYS_ADMIN": true,
	"CAP_SYS_BOOT": true, "CAP_SYS_NICE": true, "CAP_SYS_RESOURCE": true,
	"CAP_SYS_TIME": true, "CAP_SYS_TTY_CONFIG": true, "CAP_MKNOD": true,
	"CAP_LEASE": true, "CAP_AUDIT_WRITE": true, "CAP_AUDIT_CONTROL": true,
	"CAP_SETFCAP": true, "CAP_MAC_OVERRIDE": true, "CAP_MAC_ADMIN": true,
	"CAP_SYSLOG": true, "CAP_WAKE_ALARM": true, "CAP_BLOCK_SUSPEND": true,
	"CAP_AUDIT_READ": true, "CAP_PERFMON": true, "CAP_BPF": true,
	"CAP_CHECKPOINT_RESTORE": true,
}

// NormalizeCapability reads a CapAdd or CapDrop entry as dockerd's
// caps.NormalizeLegacyCapabilities does: upper-cased with strings.ToUpper
// (which also maps 'ı' to 'I' and 'ſ' to 'S', so "sys_admın" is
// CAP_SYS_ADMIN), "ALL" kept as is, and a "CAP_" prefix added when missing.
// It returns the canonical name ("CAP_SYS_ADMIN" or "ALL") and whether
// dockerd knows it; dockerd refuses a container with an unknown one.
func NormalizeCapability(c string) (string, bool) {
	c = strings.ToUpper(c)
	if c == AllCapabilities {
		return c, true
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c, capabilities[c]
}
