package caddymodule

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addDirectoryCommands adds the user and business commands of the built-in
// directory:
//
//	user create --email <e> --name <n> --business <id>[=<name>]... [--current-business <id>]
//	            [--password <p> | password on standard input]
//	user list | get <id or email> | delete <id or email>
//	business list | create <id> <name>
func addDirectoryCommands(cmd *cobra.Command, af *adminFlags) {
	user := &cobra.Command{Use: "user", Short: "Users of the built-in directory"}
	var spec struct {
		Email           string              `json:"email"`
		Name            string              `json:"name,omitempty"`
		Password        string              `json:"password"`
		Businesses      []map[string]string `json:"businesses"`
		CurrentBusiness string              `json:"current_business,omitempty"`
	}
	var businesses []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Creates a user; the password is read from standard input unless --password is given",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			for _, b := range businesses {
				id, name, _ := strings.Cut(b, "=")
				if id == "" {
					return fmt.Errorf("--business %q: want <id> or <id>=<name>", b)
				}
				m := map[string]string{"id": id}
				if name != "" {
					m["name"] = name
				}
				spec.Businesses = append(spec.Businesses, m)
			}
			if spec.Password == "" {
				pw, err := readPassword(c)
				if err != nil {
					return err
				}
				spec.Password = pw
			}
			return af.call(http.MethodPost, "users", spec)
		},
	}
	create.Flags().StringVar(&spec.Email, "email", "", "E-mail address the user signs in with (required)")
	create.Flags().StringVar(&spec.Name, "name", "", "Name shown on the consent screen")
	create.Flags().StringVar(&spec.Password, "password", "", "Password (visible to other local users: prefer standard input)")
	create.Flags().StringArrayVar(&businesses, "business", nil, "A business the user administers, as <id> or <id>=<name>; repeat for more (required). The name is a new business's: an existing one keeps its own, and a different name is refused (rename with `business create`)")
	create.Flags().StringVar(&spec.CurrentBusiness, "current-business", "", "The business preselected on the consent screen (default: the first)")
	_ = create.MarkFlagRequired("email")
	_ = create.MarkFlagRequired("business")

	user.AddCommand(create,
		&cobra.Command{Use: "list", Short: "Lists users (never their password hashes)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return af.call(http.MethodGet, "users", nil) }},
		&cobra.Command{Use: "get <id or email>", Short: "Shows a user", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodGet, "users/"+url.PathEscape(a[0]), nil)
			}},
		&cobra.Command{Use: "delete <id or email>", Short: "Deletes a user and revokes every grant they gave", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodDelete, "users/"+url.PathEscape(a[0]), nil)
			}},
	)

	business := &cobra.Command{Use: "business", Short: "Businesses (tenants) of the built-in directory"}
	business.AddCommand(
		&cobra.Command{Use: "list", Short: "Lists businesses", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return af.call(http.MethodGet, "businesses", nil) }},
		&cobra.Command{Use: "create <id> <name>", Short: "Creates a business, or renames it", Args: cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, a []string) error {
				return af.call(http.MethodPost, "businesses", map[string]string{"id": a[0], "name": a[1]})
			}},
	)
	cmd.AddCommand(user, business)
}

// readPassword reads the password from standard input: without echo from
// a terminal, otherwise one line (so it can be piped in).
func readPassword(c *cobra.Command) (string, error) {
	var pw string
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(c.ErrOrStderr(), "Password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(c.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		pw = string(b)
	} else {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", errors.New("reading the password from standard input: none given (use --password or pipe it in)")
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		return "", errors.New("the password is empty")
	}
	return pw, nil
}
