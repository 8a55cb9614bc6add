package authserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// serveJWKS publishes the public signing keys (active and retired-but-valid).
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	// Short enough that verifiers pick up a rotation before the retired key
	// is dropped (it stays published for a whole token lifetime).
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(s.tokens.JWKS())
	}
}

// metadata is RFC 8414 authorization-server metadata, which is also a valid
// OpenID Provider configuration document.
type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	// RegistrationEndpoint is RFC 7591's, when registration is on.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// EndSessionEndpoint is RP-Initiated Logout 1.0's; absent with
	// delegated identity, where the platform owns the sign-in.
	EndSessionEndpoint                string   `json:"end_session_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods  []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	AuthorizationResponseISSParameter bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	// DPoPSigningAlgs are the accepted DPoP proof algorithms (RFC 9449
	// §5.1).
	DPoPSigningAlgs []string `json:"dpop_signing_alg_values_supported"`
}

// serveMetadata serves both /.well-known/oauth-authorization-server and
// /.well-known/openid-configuration, with the issuer exactly as configured
// (RFC 8414 §3.3: clients compare it byte for byte).
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	scopes := make([]string, 0, len(s.scopes)+3)
	for name := range s.scopes {
		scopes = append(scopes, name)
	}
	for _, std := range []string{"openid", "offline_access"} {
		if _, ok := s.scopes[std]; !ok {
			scopes = append(scopes, std)
		}
	}
	slices.Sort(scopes)
	auth := []string{"client_secret_basic", "client_secret_post", "none"}
	md := metadata{
		Issuer:                            s.cfg.Issuer,
		AuthorizationEndpoint:             s.endpointURL(s.paths.authorize),
		TokenEndpoint:                     s.endpointURL(s.paths.token),
		JWKSURI:                           s.endpointURL(s.paths.jwks),
		UserinfoEndpoint:                  s.endpointURL(s.paths.userinfo),
		RevocationEndpoint:                s.endpointURL(s.paths.revoke),
		IntrospectionEndpoint:             s.endpointURL(s.paths.introspect),
		RegistrationEndpoint:              s.registrationEndpoint(),
		ScopesSupported:                   scopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "client_credentials", "refresh_token"},
		TokenEndpointAuthMethods:          auth,
		RevocationEndpointAuthMethods:     auth,
		IntrospectionEndpointAuthMethods:  auth[:2],
		CodeChallengeMethodsSupported:     []string{"S256"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  s.tokens.IDTokenAlgs(),
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "user_id", "user_name", "user_email", "default_business_id", "business_ids", "authorized_business_id"},
		PromptValuesSupported:             []string{"none", "login", "consent"},
		AuthorizationResponseISSParameter: true,
		DPoPSigningAlgs:                   s.DPoPAlgs(),
	}
	if _, builtin := s.identity.(builtinIdentity); builtin {
		md.EndSessionEndpoint = s.endpointURL(s.paths.signOut)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	writeBody(w, r, md)
}

func joinScopes(s []string) string { return strings.Join(s, " ") }

// writeBody writes v as JSON, or only the headers for HEAD.
func writeBody(w http.ResponseWriter, r *http.Request, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(v)
	}
}
