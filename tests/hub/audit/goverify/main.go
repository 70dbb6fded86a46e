// Command goverify checks the hub's audit checkpoints and proofs with Go's own
// golang.org/x/mod/sumdb/note (signed notes) and golang.org/x/mod/sumdb/tlog (RFC 6962
// proofs): code the hub's project did not write. It reads one JSON request on stdin:
//
//	{"verifier": "...", "checkpoint": "<signed note>", "seq": S, "leaf": "<base64>",
//	 "inclusion": ["<base64>", ...], "old_checkpoint": "<signed note>",
//	 "consistency": ["<base64>", ...]}
//
// and prints one line per check; it exits 1 at the first check that fails.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	Verifier      string   `json:"verifier"`
	Checkpoint    string   `json:"checkpoint"`
	Seq           int64    `json:"seq"`
	Leaf          string   `json:"leaf"`
	Inclusion     []string `json:"inclusion"`
	OldCheckpoint string   `json:"old_checkpoint"`
	Consistency   []string `json:"consistency"`
}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

// open verifies the signed note with the verifier key and reads the C2SP checkpoint body:
// origin, tree size, base64 root hash.
func open(msg string, verifiers note.Verifiers, origin string) (int64, tlog.Hash) {
	n, err := note.Open([]byte(msg), verifiers)
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != origin {
		fail("checkpoint origin %q is not the key's name %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("checkpoint root hash: %v", err)
	}
	var h tlog.Hash
	copy(h[:], root)
	return size, h
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			fail("proof hash %d: %v", i, err)
		}
		copy(out[i][:], raw)
	}
	return out
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail("request: %v", err)
	}
	v, err := note.NewVerifier(req.Verifier)
	if err != nil {
		fail("note.NewVerifier: %v", err)
	}
	verifiers := note.VerifierList(v)
	size, root := open(req.Checkpoint, verifiers, v.Name())
	fmt.Printf("checkpoint %d signed by %s\n", size, v.Name())
	if req.Leaf != "" {
		leaf, err := base64.StdEncoding.DecodeString(req.Leaf)
		if err != nil {
			fail("leaf: %v", err)
		}
		proof := tlog.RecordProof(hashes(req.Inclusion))
		if err := tlog.CheckRecord(proof, size, root, req.Seq-1, tlog.RecordHash(leaf)); err != nil {
			fail("tlog.CheckRecord: %v", err)
		}
		fmt.Printf("entry %d included\n", req.Seq)
	}
	if req.OldCheckpoint != "" {
		oldSize, oldRoot := open(req.OldCheckpoint, verifiers, v.Name())
		proof := tlog.TreeProof(hashes(req.Consistency))
		if err := tlog.CheckTree(proof, size, root, oldSize, oldRoot); err != nil {
			fail("tlog.CheckTree: %v", err)
		}
		fmt.Printf("tree %d extends tree %d\n", size, oldSize)
	}
}
