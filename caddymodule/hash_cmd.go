package caddymodule

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/oauthgate/oauthgate/authserver"
	"github.com/oauthgate/oauthgate/tokens"
)

// minStaticSecret is the shortest client secret hash-secret hashes. The
// hash is SHA-256, fast by design (see tokens.HashSecret): it protects a
// secret only as well as the secret's own randomness does, so a short or
// chosen one would be guessed from its hash.
const minStaticSecret = 32

// addHashCommand adds
//
//	hash-secret [--user] [--plaintext <secret>]
//	hash-secret --generate [--prefix <prefix>]
//
// which prints what a static client's secret_hash (SHA-256) or a configured
// user's password_hash (bcrypt) takes, so that neither the secret nor the
// password has to be written in the Caddyfile. The secret is read from the
// terminal without echo (twice), or as one line of standard input; never
// from the command line unless --plaintext says so.
func addHashCommand(cmd *cobra.Command) {
	var user, generate bool
	var plaintext, prefix string
	hash := &cobra.Command{
		Use:   "hash-secret",
		Short: "Prints the secret_hash of a client secret, or with --user the password_hash of a password",
		Long: `
Prints the hash a static client's secret_hash takes ("sha256:" and 64 hex
digits, what the store keeps) or, with --user, the bcrypt hash a configured
user's password_hash takes. The Caddyfile then holds no secret:

  client billing { secret_hash sha256:… }
  user ada@example.com { password_hash $2a$12$… }

The secret is read from the terminal without echo, or as one line of
standard input. A client secret must be at least 32 characters of random
text (the hash is a fast one, as for generated secrets): --generate makes a
256-bit secret and prints it with its hash, as JSON.
`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(c *cobra.Command, _ []string) error {
			out := c.OutOrStdout()
			if generate {
				if user || plaintext != "" {
					return errors.New("--generate makes a client secret: it takes neither --user nor --plaintext")
				}
				secret, err := tokens.NewSecret(prefix)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]string{"client_secret": secret, "secret_hash": tokens.FormatSecretHash(tokens.HashSecret(secret))})
			}
			secret := plaintext
			if secret == "" {
				label := "Client secret"
				if user {
					label = "Password"
				}
				var err error
				if secret, err = readSecret(c.InOrStdin(), c.ErrOrStderr(), label); err != nil {
					return err
				}
			}
			return writeHash(out, secret, user)
		},
	}
	hash.Flags().BoolVar(&user, "user", false, "Hash a user's password with bcrypt (password_hash) instead of a client secret")
	hash.Flags().StringVarP(&plaintext, "plaintext", "p", "", "The secret itself (visible to other local users and kept in shell history: prefer the prompt or standard input)")
	hash.Flags().BoolVar(&generate, "generate", false, "Generate a 256-bit client secret and print it with its hash")
	hash.Flags().StringVar(&prefix, "prefix", "", "Prefix of the generated secret (e.g. ysk_)")
	cmd.AddCommand(hash)
}

// writeHash prints the hash of secret: bcrypt for a user's password,
// SHA-256 for a client secret.
func writeHash(out io.Writer, secret string, user bool) error {
	if user {
		h, err := authserver.HashPassword(secret)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, h)
		return err
	}
	if len(secret) < minStaticSecret {
		return fmt.Errorf("the client secret is %d characters: want at least %d of random text, whose fast hash cannot be reversed (--generate makes one)",
			len(secret), minStaticSecret)
	}
	_, err := fmt.Fprintln(out, tokens.FormatSecretHash(tokens.HashSecret(secret)))
	return err
}

// readSecret reads a secret: from a terminal without echo and twice, so a
// typing mistake is caught; otherwise one line (so it can be piped in).
func readSecret(in io.Reader, prompt io.Writer, label string) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		read := func(p string) (string, error) {
			fmt.Fprint(prompt, p)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(prompt)
			return string(b), err
		}
		first, err := read(label + ": ")
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", strings.ToLower(label), err)
		}
		again, err := read("Again: ")
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", strings.ToLower(label), err)
		}
		if first != again {
			return "", errors.New("the two entries differ")
		}
		if first == "" {
			return "", fmt.Errorf("the %s is empty", strings.ToLower(label))
		}
		return first, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the %s from standard input: none given", strings.ToLower(label))
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("the %s is empty", strings.ToLower(label))
	}
	return line, nil
}
