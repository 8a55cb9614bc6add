package oautherr

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestTableIsOneEntryPerCode(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range All {
		if seen[e.Code] {
			t.Errorf("code %q appears twice", e.Code)
		}
		seen[e.Code] = true
		if e.Status < 400 || e.Status > 599 {
			t.Errorf("%s: status %d is not an error status", e.Code, e.Status)
		}
		if e.Description == "" {
			t.Errorf("%s: no default description", e.Code)
		}
	}
}

func TestWithCopiesAndKeepsCode(t *testing.T) {
	e := InvalidRequest.WithDescription("method must be POST").WithStatus(405).WithChallenge("Basic")
	if InvalidRequest.Description == "method must be POST" || InvalidRequest.Status != 400 || InvalidRequest.Challenge != "" {
		t.Fatalf("With modified the table entry: %+v", InvalidRequest)
	}
	if !errors.Is(e, InvalidRequest) || errors.Is(e, InvalidGrant) {
		t.Fatalf("errors.Is does not match by code: %+v", e)
	}
	b, _ := json.Marshal(e)
	if string(b) != `{"error":"invalid_request","error_description":"method must be POST"}` {
		t.Fatalf("body = %s", b)
	}
	if e.Error() != "invalid_request: method must be POST" {
		t.Fatalf("Error() = %q", e.Error())
	}
}
