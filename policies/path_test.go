package policies

import "testing"

func TestCleanPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/", true},
		{"/api/v1/me", true},
		{"/api/v1/me/", true},
		{"/a/.b", true},
		{"/a/b.", true},
		{"/a/...", true},
		{"/a/..b", true},
		{"/a/%2e%2e/b", true}, // raw text: decoding is the caller's job
		{"/a/%2F/b", true},
		{"/a/.%2e", true},
		{"", false},
		{"a/b", false},
		{".", false},
		{"//", false},
		{"//a", false},
		{"/a//b", false},
		{"/a/b//", false},
		{"/.", false},
		{"/..", false},
		{"/./a", false},
		{"/../a", false},
		{"/a/./b", false},
		{"/a/../b", false},
		{"/a/.", false},
		{"/a/..", false},
		{"/a/../", false},
	}
	for _, tt := range tests {
		if got := CleanPath(tt.path); got != tt.want {
			t.Errorf("CleanPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
