package integration

import (
	"go.yaml.in/yaml/v3"

	"github.com/fleetgate/fleetgate/router"
)

// routerRule decodes one rule written in YAML, as an operator would.
func routerRule(src string) router.RuleConfig {
	var r router.RuleConfig
	if err := yaml.Unmarshal([]byte(src), &r); err != nil {
		panic(err)
	}
	return r
}
