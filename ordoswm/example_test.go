package ordoswm_test

import (
	"encoding/json"
	"fmt"

	"github.com/ordoflow/ordo/ordoswm"
)

// Convert turns a Serverless Workflow Manager template into an Ordo
// definition, which deploys like any other.
func ExampleConvert() {
	template := []byte(`{
		"workflow_name": "Deliver Pizza",
		"component_name": "ITALIAN",
		"stages": [
			{"stage_name": "ORDER", "stage_order": 1, "tasks": [
				{"task_name": "confirm_order", "parent_task": [], "task_queue": "confirm_order_queue",
				 "task_type": "SERVICE", "business_status": "ORDER CONFIRMED"}]},
			{"stage_name": "DELIVER", "stage_order": 2, "tasks": [
				{"task_name": "deliver_food", "parent_task": [], "task_type": "HUMAN",
				 "task_queue": "deliver_food_queue", "assigned_to": "delivery_executive"}]}
		]
	}`)
	def, err := ordoswm.Convert(template)
	if err != nil {
		fmt.Println(err)
		return
	}
	var src struct {
		Stages []struct {
			Name  string            `json:"name"`
			Steps []json.RawMessage `json:"steps"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(def.JSON(), &src); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(def.Name())
	for _, st := range src.Stages {
		fmt.Println(st.Name, string(st.Steps[0]))
	}
	// Output:
	// deliver-pizza
	// ORDER {"id":"confirm_order","task":{"queue":"confirm_order_queue","command":"confirm_order"},"params":{"business_status":"ORDER CONFIRMED","component_name":"ITALIAN","stage_name":"ORDER","task_name":"confirm_order","task_queue":"confirm_order_queue","task_type":"SERVICE"}}
	// DELIVER {"id":"deliver_food","human":{"role":"delivery_executive"},"params":{"assigned_to":"delivery_executive","component_name":"ITALIAN","stage_name":"DELIVER","task_name":"deliver_food","task_queue":"deliver_food_queue","task_type":"HUMAN"}}
}
