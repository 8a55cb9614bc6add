package caddymodule

import "github.com/spf13/cobra"

// addDirectoryCommands adds the user and business commands of the built-in
// directory; the directory arrives with the authorization-code flow.
func addDirectoryCommands(cmd *cobra.Command, af *adminFlags) {}
