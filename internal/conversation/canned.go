package conversation

import "strings"

// ExpandCanned fills a canned reply's variables: {{first_name}} with the
// person's first name ("there" when unknown, so "Hi {{first_name}}" still
// reads well) and {{agent_name}} with the agent's name. Unknown variables
// stay as written, so a typo shows up in the composer before sending.
func ExpandCanned(body, firstName, agentName string) string {
	if strings.TrimSpace(firstName) == "" {
		firstName = "there"
	}
	return strings.NewReplacer("{{first_name}}", firstName, "{{agent_name}}", agentName).Replace(body)
}
