package dockerapi

import (
	"errors"
	"fmt"
)

// opSetWords is how many 64-bit words hold one bit per operation.
const opSetWords = (int(numOperations) + 63) / 64

// OpSet is a set of operations, one bit each. A policy compiles its globs
// into OpSets once and then tests a request with Has, which neither
// allocates nor compares strings.
type OpSet [opSetWords]uint64

// Has reports whether op is in the set.
func (s *OpSet) Has(op Operation) bool {
	return op < numOperations && s[op/64]&(1<<(op%64)) != 0
}

// Add puts op in the set.
func (s *OpSet) Add(op Operation) {
	if op < numOperations {
		s[op/64] |= 1 << (op % 64)
	}
}

// Union adds every operation of t to s.
func (s *OpSet) Union(t OpSet) {
	for i := range s {
		s[i] |= t[i]
	}
}

// Ops lists the operations in the set in table order.
func (s *OpSet) Ops() []Operation {
	var ops []Operation
	for op := range numOperations {
		if s.Has(op) {
			ops = append(ops, op)
		}
	}
	return ops
}

// ErrGlob is wrapped by every error CompileGlob returns.
var ErrGlob = errors.New("invalid operation glob")

// Match reports whether the operation's name matches glob. In a glob, '*'
// stands for any run of characters, dots included: "container.*" matches
// "container.create" and "container.attach.ws", "*.list" every list, "*"
// everything. Nothing matches OpUnknownRoute: an unknown route can never be
// allowed by a glob.
func (op Operation) Match(glob string) bool {
	if op == OpUnknownRoute || op >= numOperations {
		return false
	}
	return globMatch(glob, op.String())
}

// CompileGlob returns the set of operations glob matches. A glob with
// characters that no operation name has, or one that matches no operation
// (a typo such as "contianer.*"), is an error.
func CompileGlob(glob string) (OpSet, error) {
	var set OpSet
	if err := checkGlobSyntax(glob); err != nil {
		return set, err
	}
	for op := OpUnknownRoute + 1; op < numOperations; op++ {
		if op.Match(glob) {
			set.Add(op)
		}
	}
	if set == (OpSet{}) {
		return set, fmt.Errorf("%w: %q matches no operation (see docs/OPERATIONS.md)", ErrGlob, glob)
	}
	return set, nil
}

// CompileGlobs returns the union of the sets of all globs.
func CompileGlobs(globs []string) (OpSet, error) {
	var set OpSet
	for _, g := range globs {
		s, err := CompileGlob(g)
		if err != nil {
			return OpSet{}, err
		}
		set.Union(s)
	}
	return set, nil
}

func checkGlobSyntax(glob string) error {
	if glob == "" {
		return fmt.Errorf("%w: empty", ErrGlob)
	}
	if glob == operations[OpUnknownRoute].name {
		return fmt.Errorf("%w: %s cannot be allowed", ErrGlob, glob)
	}
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '*') {
			return fmt.Errorf("%w: %q has %q; operation names use a-z, 0-9, '.' and '_', and '*' matches any run of them", ErrGlob, glob, c)
		}
	}
	return nil
}

// globMatch matches name against a pattern where '*' matches any run of
// bytes. It backtracks to the last star only, which is linear enough for
// operation names.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, resume := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			resume++
			p, n = star+1, resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
