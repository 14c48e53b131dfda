package ordocli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo/ordoclient"
)

// newSend is `ordo send`: a message for the receive steps waiting for it.
func newSend() *cobra.Command {
	var key, payload, id, ttl string
	cmd := &cobra.Command{
		Use:   "send MESSAGE",
		Short: "Send a message to the receive steps waiting for it",
		Long: `Send a message to the receive steps waiting for MESSAGE with the
correlation key --key. It goes to the instance that has waited longest (to
every waiting instance for a broadcast step); when none waits yet, it is kept
for --ttl and taken by the first receive step that begins to wait for it.
Sending the same MESSAGE and --id again does nothing.`,
		Example: `  ordo send CreditCardUpdated --key o-1001 --payload '{"card":"4242"}'
  ordo send CreditCardUpdated --key o-1001 --id evt-77 --payload @card.json --ttl P7D`,
		Args: exactArgs(1, "one message name"),
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "correlation key the receive step waits for")
	f.StringVar(&payload, "payload", "", "message payload: JSON, @file, or @- for stdin (default {})")
	f.StringVar(&id, "id", "", "message id, to make sending it twice harmless (default: a new one)")
	f.StringVar(&ttl, "ttl", "", `how long the message is kept when no step waits yet, e.g. 24h or P7D (default 24h)`)
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		body, err := readJSONArg("payload", payload, cmd.InOrStdin())
		if err != nil {
			return err
		}
		res, err := c.Send(cmd.Context(), &ordoclient.SendRequest{Name: args[0], Key: key, ID: id, Payload: body, TTL: ttl})
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(cmd.OutOrStdout(), res)
		}
		switch {
		case res.Duplicate:
			fmt.Fprintf(cmd.OutOrStdout(), "message %s was sent before: nothing done\n", res.ID)
		case len(res.DeliveredTo) == 0:
			fmt.Fprintf(cmd.OutOrStdout(), "message %s kept: no instance waits for %s with key %q yet\n", res.ID, args[0], key)
		default:
			fmt.Fprintf(cmd.OutOrStdout(), "message %s delivered to %s\n", res.ID, strings.Join(res.DeliveredTo, ", "))
		}
		return nil
	})
	return cmd
}
