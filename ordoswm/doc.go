// Package ordoswm makes Ordo a drop-in for the Serverless Workflow Manager
// (SWM): it converts SWM's JSON workflow templates (stages of tasks with
// parent_task dependencies, SERVICE and HUMAN tasks, business_status and
// any extra fields) into Ordo definitions, and handles SWM's events
// (StartWorkflow, TaskCompleted, TaskFailed, TaskPending) on an
// [ordo.Engine].
//
// # Templates
//
// [ParseTemplate] reads a template and [Template.Definition] converts it;
// [Convert] does both. [IsTemplate] tells an SWM template from an Ordo one
// by its shape, which is how `ordo deploy` and POST /api/v1/definitions
// accept both. The conversion, in short:
//
//   - the workflow is named after workflow_name in lower case with
//     dashes ("Deliver Pizza" is deliver-pizza), and its instances are
//     keyed by business_ref_no (idempotencyKey and businessKey
//     input.business_ref_no);
//   - each stage is an Ordo stage, in stage_order; each task a step whose
//     id is task_name, after its parent_task;
//   - a SERVICE task is a task step on its task_queue, with command
//     task_name; a HUMAN task is a human step whose role is assigned_to
//     (or else task_queue);
//   - each step's params hold what SWM puts in its StartTask message:
//     component_name, stage_name, task_name, task_type, task_queue,
//     business_status and the task's extra fields;
//   - a failed task parks the instance for review (onFailure: review), so
//     that a retrier's TaskPending can start it again.
//
// # Events
//
// [ParseEvent] reads an event and [Events.Handle] applies it. Instances are
// found by business_ref_no (their business key), within the workflows of
// the event's component_name or workflow_name. See docs/swm.md for the
// whole mapping.
package ordoswm
