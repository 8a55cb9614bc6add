package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/oauthgate/oauthgate/authserver"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauthgate",
		Usage: "<client|grant|keys|user|business> <action> [args] [--address <admin>] | hash-secret",
		Short: "Manages oauthgate clients, users, grants and keys through the admin API",
		Long: `
Manages a running oauthgate through Caddy's admin API (/oauthgate/ on the
admin endpoint, localhost:2019 by default; --address, or --config and
--adapter to read it from a config file, as other caddy commands do).

  client create --name <n> [--grant-types …] [--scopes …] [--businesses …]
                [--redirect-uris …] [--post-logout-redirect-uris …]
                [--id-token-signed-response-alg RS256]
                [--first-party] [--public] [--dpop-bound-access-tokens]
  client list | get <id> | delete <id> | rotate-secret <id>
  client link <id> <business> | unlink <id> <business>
  grant list [--client <id>] [--user <id>] [--live]
  grant revoke <id> | revoke --user <id> [--client <id>]
  keys list | rotate
  user create --email <e> --business <id>[=<name>] … [--name <n>]
              [--password <p>, else read from standard input]
              [--current-business <id>]
  user list | get <id or email> | delete <id or email>
  business list | create <id> <name>
  hash-secret [--user] [--plaintext <s>, else read from the terminal or
              standard input] | hash-secret --generate [--prefix <p>]

The client secret is printed once, by create and rotate-secret; it is not
stored and cannot be shown again. Output is JSON. hash-secret needs no
running Caddy: it prints a static client's secret_hash (or, with --user, a
configured user's password_hash) so the Caddyfile holds no secret.
`,
		CobraFunc: buildCommand,
	})
}

// adminFlags are shared by every subcommand.
type adminFlags struct {
	address, config, adapter string
}

func buildCommand(cmd *cobra.Command) {
	af := &adminFlags{}
	cmd.PersistentFlags().StringVar(&af.address, "address", "", "The address of Caddy's admin API (default localhost:2019)")
	cmd.PersistentFlags().StringVarP(&af.config, "config", "c", "", "Configuration file to read the admin address from")
	cmd.PersistentFlags().StringVarP(&af.adapter, "adapter", "a", "", "Name of config adapter")

	client := &cobra.Command{Use: "client", Short: "Registered OAuth clients"}
	var spec authserver.ClientSpec
	create := &cobra.Command{
		Use: "create", Short: "Registers a client and prints its id and secret (once)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return af.call(http.MethodPost, "clients", spec) },
	}
	create.Flags().StringVar(&spec.Name, "name", "", "Name shown on the consent screen (required)")
	create.Flags().StringSliceVar(&spec.GrantTypes, "grant-types", nil, "Grant types: client_credentials, authorization_code, refresh_token")
	create.Flags().StringSliceVar(&spec.Scopes, "scopes", nil, "Scopes the client may request")
	create.Flags().StringSliceVar(&spec.Businesses, "businesses", nil, "Businesses the client owns (client-credentials tenancy)")
	create.Flags().StringSliceVar(&spec.RedirectURIs, "redirect-uris", nil, "Redirect URIs, matched exactly")
	create.Flags().StringSliceVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uris", nil, "Where sign-out may return the browser (RP-initiated logout), matched exactly")
	create.Flags().StringVar(&spec.IDTokenSignedResponseAlg, "id-token-signed-response-alg", "", "Algorithm of the client's id_tokens: RS256 or the server's signing_alg (default)")
	create.Flags().BoolVar(&spec.FirstParty, "first-party", false, "Platform-scoped client: skips the consent screen")
	create.Flags().BoolVar(&spec.Public, "public", false, "Public client: no secret, PKCE required")
	create.Flags().BoolVar(&spec.DPoPBoundAccessTokens, "dpop-bound-access-tokens", false, "Require a DPoP proof on every token request: never a bearer token (RFC 9449 §5.2)")
	_ = create.MarkFlagRequired("name")
	client.AddCommand(create,
		&cobra.Command{Use: "list", Short: "Lists clients", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return af.call(http.MethodGet, "clients", nil) }},
		&cobra.Command{Use: "get <id>", Short: "Shows a client", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodGet, "clients/"+url.PathEscape(a[0]), nil)
			}},
		&cobra.Command{Use: "delete <id>", Short: "Deletes a client and revokes its tokens", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodDelete, "clients/"+url.PathEscape(a[0]), nil)
			}},
		&cobra.Command{Use: "rotate-secret <id>", Short: "Replaces a client's secret and prints the new one (once)", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodPost, "clients/"+url.PathEscape(a[0])+"/secret", nil)
			}},
		&cobra.Command{Use: "link <id> <business>", Short: "Lets a client's tokens act for a business", Args: cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodPost, "clients/"+url.PathEscape(a[0])+"/businesses", map[string]string{"business_id": a[1]})
			}},
		&cobra.Command{Use: "unlink <id> <business>", Short: "Removes a business from a client", Args: cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodDelete, "clients/"+url.PathEscape(a[0])+"/businesses/"+url.PathEscape(a[1]), nil)
			}},
	)

	grant := &cobra.Command{Use: "grant", Short: "Grants users gave to clients"}
	var grantClient, grantUser string
	var grantLive bool
	list := &cobra.Command{Use: "list", Short: "Lists grants, newest first", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			q := url.Values{}
			if grantClient != "" {
				q.Set("client_id", grantClient)
			}
			if grantUser != "" {
				q.Set("user_id", grantUser)
			}
			if grantLive {
				q.Set("live", "true")
			}
			path := "grants"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			return af.call(http.MethodGet, path, nil)
		}}
	list.Flags().StringVar(&grantClient, "client", "", "Only grants of this client")
	list.Flags().StringVar(&grantUser, "user", "", "Only grants of this user")
	list.Flags().BoolVar(&grantLive, "live", false, "Only grants neither revoked nor expired")
	var revokeClient, revokeUser string
	revoke := &cobra.Command{Use: "revoke <id> | --user <id> [--client <id>]",
		Short: "Revokes a grant and every token of it, or every grant of a user (of one client)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, a []string) error {
			method, path, err := grantRevokeRequest(a, revokeUser, revokeClient)
			if err != nil {
				return err
			}
			return af.call(method, path, nil)
		}}
	revoke.Flags().StringVar(&revokeUser, "user", "", "Revoke every live grant of this user (and forget their consents)")
	revoke.Flags().StringVar(&revokeClient, "client", "", "With --user: only the grants of this client")
	grant.AddCommand(list, revoke)

	keys := &cobra.Command{Use: "keys", Short: "Signing keys"}
	keys.AddCommand(
		&cobra.Command{Use: "list", Short: "Lists signing keys (no private material)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return af.call(http.MethodGet, "keys", nil) }},
		&cobra.Command{Use: "rotate", Short: "Starts signing with a new key; the old one keeps verifying", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return af.call(http.MethodPost, "keys/rotate", nil) }},
	)
	cmd.AddCommand(client, grant, keys)
	addDirectoryCommands(cmd, af)
	addHashCommand(cmd)
}

// call sends one admin API request and prints the JSON answer.
func (af *adminFlags) call(method, path string, body any) error {
	var cfg []byte
	if af.config != "" {
		var err error
		if cfg, _, _, err = caddycmd.LoadConfig(af.config, af.adapter); err != nil {
			return fmt.Errorf("loading config: %w", err)
		}
	}
	addr, err := caddycmd.DetermineAdminAPIAddress(af.address, cfg, af.config, af.adapter)
	if err != nil {
		return fmt.Errorf("determining admin address: %w", err)
	}
	var rd io.Reader
	headers := http.Header{}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
		headers.Set("Content-Type", "application/json")
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, "/oauthgate/"+path, headers, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading admin API response: %w", err)
	}
	if len(out) > 0 {
		_, _ = os.Stdout.Write(out)
	} else {
		fmt.Println(resp.Status)
	}
	return nil
}

// grantRevokeRequest is the admin request of `grant revoke`: one grant by
// id, or every grant of --user (of --client only, when given).
func grantRevokeRequest(args []string, user, client string) (method, path string, err error) {
	switch {
	case len(args) == 1 && user == "" && client == "":
		return http.MethodDelete, "grants/" + url.PathEscape(args[0]), nil
	case len(args) == 0 && user != "":
		q := url.Values{"user_id": {user}}
		if client != "" {
			q.Set("client_id", client)
		}
		return http.MethodDelete, "grants?" + q.Encode(), nil
	}
	return "", "", errors.New("grant revoke: give a grant id, or --user <id> (with --client <id> to revoke only that client's grants), not both")
}
