// A table of the Tekton v1 resource shapes for the editor: which fields exist where, their
// types, allowed values, and a short explanation of each (written for Slipway from the API's
// facts). Used for completion, hover docs, and snippets.
//
// A field is {type, doc, list?, values?, required?}; `type` is a scalar kind ('string',
// 'integer', 'boolean', 'duration', 'map', 'any') or the name of an object type below.

const s = (doc, extra = {}) => ({ type: 'string', doc, ...extra });
const o = (type, doc, extra = {}) => ({ type, doc, ...extra });
const l = (type, doc, extra = {}) => ({ type, doc, list: true, ...extra });

const PARAM_TYPES = ['string', 'array', 'object'];
const ON_ERROR = ['continue', 'stopAndFail'];
const PULL = ['Always', 'IfNotPresent', 'Never'];

export const TYPES = {
  ObjectMeta: {
    doc: 'Identity of the resource.',
    fields: {
      name: s('The resource name: lowercase letters, digits and "-", at most 63 characters for most uses.', { required: true }),
      generateName: s('A prefix; the server appends a random suffix to make the name. Usual for runs.'),
      namespace: s('The namespace. Slipway keeps everything in "default".'),
      labels: o('map', 'Key/value pairs for selecting and grouping resources.'),
      annotations: o('map', 'Key/value pairs of free-form metadata that selection ignores.'),
    },
  },

  // ---- Task ----
  TaskSpec: {
    doc: 'What a Task does: its inputs, outputs and the ordered steps that run in one pod.',
    fields: {
      description: s('A human-readable explanation of the Task.'),
      displayName: s('A friendly name shown by dashboards instead of the resource name.'),
      params: l('ParamSpec', 'Inputs the Task accepts; refer to them as $(params.NAME).'),
      steps: l('Step', 'The containers that run in order. A step that fails stops the rest unless onError says otherwise.', { required: true }),
      stepTemplate: o('StepTemplate', 'Defaults merged into every step (env, image, resources...). A step\'s own values win.'),
      sidecars: l('Sidecar', 'Containers that run alongside the steps for the whole Task, e.g. a database for tests.'),
      workspaces: l('WorkspaceDeclaration', 'Volumes the Task expects the run to provide; path at $(workspaces.NAME.path).'),
      results: l('TaskResult', 'Values the Task produces; a step writes each one to $(results.NAME.path).'),
      volumes: l('any', 'Kubernetes volumes available to the steps through volumeMounts.'),
    },
  },
  ParamSpec: {
    doc: 'A declared input parameter.',
    fields: {
      name: s('The parameter name, used as $(params.NAME).', { required: true }),
      type: s('The value\'s shape: string (default), array or object.', { values: PARAM_TYPES }),
      description: s('What the parameter is for.'),
      default: o('any', 'The value used when the run does not pass one. Without a default the parameter is required.'),
      properties: o('map', 'For an object parameter: its keys, each with a type (string only).'),
      enum: l('string', 'The only values the parameter may take.'),
    },
  },
  Step: {
    doc: 'One container run in sequence inside the Task\'s pod.',
    fields: {
      name: s('A name unique within the Task; shown in logs and status.'),
      image: s('The container image to run, e.g. alpine or a digest-pinned reference.', { required: true }),
      script: s('A script to run in the container; a #! line picks the interpreter (default sh). Cannot be combined with command.'),
      command: l('string', 'The entrypoint; replaces the image\'s ENTRYPOINT.'),
      args: l('string', 'Arguments to the entrypoint; replaces the image\'s CMD.'),
      workingDir: s('The directory the step starts in.'),
      env: l('EnvVar', 'Environment variables set in the container.'),
      envFrom: l('any', 'Sources (ConfigMaps, Secrets) whose keys become environment variables.'),
      computeResources: o('ResourceRequirements', 'CPU and memory requests and limits for this step.'),
      volumeMounts: l('VolumeMount', 'Volumes mounted into the container.'),
      imagePullPolicy: s('When to pull the image.', { values: PULL }),
      securityContext: o('map', 'Kubernetes security settings such as runAsUser or privileged.'),
      timeout: o('duration', 'How long the step may run, e.g. 30s or 5m; the step fails when it is exceeded.'),
      onError: s('continue keeps going after a failing step and records its exit code; stopAndFail (default) fails the Task.', { values: ON_ERROR }),
      stdoutConfig: o('StepOutputConfig', 'Also write the step\'s standard output to a file, e.g. a result path.'),
      stderrConfig: o('StepOutputConfig', 'Also write the step\'s standard error to a file.'),
      ref: o('StepRef', 'Use a StepAction instead of inline image/script.'),
      params: l('Param', 'Values passed to the referenced StepAction\'s params.'),
      results: l('StepResult', 'Values this step produces for later steps: $(steps.NAME.results.RESULT).'),
      workspaces: l('any', 'Workspaces this step may use (isolated workspaces).'),
      when: l('WhenExpression', 'Conditions for running this step; a false one skips it.'),
    },
  },
  StepTemplate: {
    doc: 'Defaults for every step of the Task.',
    fields: {
      image: s('Default image for steps that name none.'),
      env: l('EnvVar', 'Variables added to every step; a step\'s own variable of the same name wins.'),
      envFrom: l('any', 'Environment sources for every step.'),
      workingDir: s('Default working directory.'),
      command: l('string', 'Default entrypoint.'),
      args: l('string', 'Default arguments.'),
      computeResources: o('ResourceRequirements', 'Default resource requests and limits.'),
      volumeMounts: l('VolumeMount', 'Mounts added to every step.'),
      securityContext: o('map', 'Default security settings.'),
      imagePullPolicy: s('Default pull policy.', { values: PULL }),
    },
  },
  Sidecar: {
    doc: 'A container that runs next to the steps.',
    fields: {
      name: s('The sidecar name.', { required: true }),
      image: s('The container image.', { required: true }),
      script: s('A script to run instead of command.'),
      command: l('string', 'The entrypoint.'),
      args: l('string', 'Arguments.'),
      env: l('EnvVar', 'Environment variables.'),
      workingDir: s('Working directory.'),
      readinessProbe: o('map', 'Steps wait until this probe succeeds.'),
      volumeMounts: l('VolumeMount', 'Volumes mounted into the sidecar.'),
    },
  },
  StepRef: {
    doc: 'A reference to a StepAction.',
    fields: {
      name: s('The StepAction\'s name.'),
      resolver: s('Fetch the StepAction remotely (git, bundles, hub, cluster, http).'),
      params: l('Param', 'Parameters for the resolver.'),
    },
  },
  StepOutputConfig: { doc: 'Where to copy a stream.', fields: { path: s('The file to write, e.g. $(results.NAME.path).') } },
  StepResult: {
    doc: 'A value produced by a step.',
    fields: {
      name: s('Result name; the step writes it to $(step.results.NAME.path).', { required: true }),
      type: s('string, array or object.', { values: PARAM_TYPES }),
      description: s('What the result holds.'),
      properties: o('map', 'Keys of an object result.'),
    },
  },
  EnvVar: {
    doc: 'An environment variable.',
    fields: {
      name: s('The variable name.', { required: true }),
      value: s('The value; may use $(params...) and other substitutions.'),
      valueFrom: o('map', 'Take the value from a Secret, ConfigMap or field instead.'),
    },
  },
  VolumeMount: {
    doc: 'A volume mounted into a container.',
    fields: {
      name: s('The volume\'s name.', { required: true }),
      mountPath: s('Where it appears in the container.', { required: true }),
      readOnly: o('boolean', 'Mount read-only.'),
      subPath: s('Mount only this path inside the volume.'),
    },
  },
  ResourceRequirements: {
    doc: 'Compute resources.',
    fields: { requests: o('map', 'The minimum, e.g. cpu: 500m, memory: 256Mi.'), limits: o('map', 'The maximum the container may use.') },
  },
  WorkspaceDeclaration: {
    doc: 'A volume the Task needs.',
    fields: {
      name: s('The workspace name, used as $(workspaces.NAME.path).', { required: true }),
      description: s('What the workspace should contain.'),
      mountPath: s('Where to mount it; defaults to /workspace/NAME.'),
      readOnly: o('boolean', 'Mount it read-only.'),
      optional: o('boolean', 'The run may omit it; check $(workspaces.NAME.bound).'),
    },
  },
  TaskResult: {
    doc: 'A value the Task produces.',
    fields: {
      name: s('The result name; write it to $(results.NAME.path).', { required: true }),
      type: s('string (default), array or object.', { values: PARAM_TYPES }),
      description: s('What the result holds.'),
      properties: o('map', 'Keys of an object result.'),
      value: s('Take the value from a step result: $(steps.STEP.results.NAME).'),
    },
  },

  // ---- Pipeline ----
  PipelineSpec: {
    doc: 'A graph of Tasks: the order comes from runAfter and from results used by later tasks.',
    fields: {
      description: s('A human-readable explanation of the Pipeline.'),
      displayName: s('A friendly name for dashboards.'),
      params: l('ParamSpec', 'Inputs of the Pipeline, passed on to tasks as $(params.NAME).'),
      workspaces: l('PipelineWorkspaceDeclaration', 'Volumes the run provides and tasks share.'),
      tasks: l('PipelineTask', 'The Tasks to run; those without dependencies run in parallel.', { required: true }),
      finally: l('PipelineTask', 'Tasks that always run after all others have finished, whether they succeeded or not.'),
      results: l('PipelineResult', 'Values the Pipeline reports, usually from $(tasks.NAME.results.RESULT).'),
    },
  },
  PipelineTask: {
    doc: 'One node of the Pipeline\'s graph.',
    fields: {
      name: s('The task\'s name in this Pipeline; other tasks refer to it in runAfter and $(tasks.NAME...).', { required: true }),
      displayName: s('A friendly name for dashboards.'),
      description: s('What this task does in the Pipeline.'),
      taskRef: o('TaskRef', 'Run a stored Task (or one fetched by a resolver).'),
      taskSpec: o('EmbeddedTask', 'Define the Task inline instead of referencing one.'),
      runAfter: l('string', 'Tasks that must finish first, by name.'),
      params: l('Param', 'Values for the Task\'s params.'),
      matrix: o('Matrix', 'Fan out: one TaskRun per combination of the listed array values.'),
      workspaces: l('WorkspacePipelineTaskBinding', 'Which Pipeline workspace each Task workspace gets.'),
      when: l('WhenExpression', 'Run the task only if every expression holds; otherwise it is skipped.'),
      timeout: o('duration', 'Time limit for each TaskRun of this task, e.g. 10m.'),
      retries: o('integer', 'How many more times a failed TaskRun is tried.'),
      onError: s('continue lets the Pipeline go on when this task fails; stopAndFail is the default.', { values: ON_ERROR }),
    },
  },
  EmbeddedTask: {
    doc: 'A Task defined inside the Pipeline.',
    fields: {
      ...{},
      metadata: o('EmbeddedMeta', 'Labels and annotations for the TaskRun.'),
    },
  },
  EmbeddedMeta: { doc: 'Metadata of an embedded spec.', fields: { labels: o('map', 'Labels.'), annotations: o('map', 'Annotations.') } },
  TaskRef: {
    doc: 'Which Task to run.',
    fields: {
      name: s('The Task\'s name.'),
      kind: s('Task (default) or a custom task kind.', { values: ['Task'] }),
      apiVersion: s('API version, for custom tasks.'),
      resolver: s('Fetch the Task remotely: git, bundles, hub, cluster or http.', { values: ['git', 'bundles', 'hub', 'cluster', 'http'] }),
      params: l('Param', 'Parameters for the resolver.'),
    },
  },
  PipelineRef: {
    doc: 'Which Pipeline to run.',
    fields: {
      name: s('The Pipeline\'s name.'),
      resolver: s('Fetch the Pipeline remotely.', { values: ['git', 'bundles', 'hub', 'cluster', 'http'] }),
      params: l('Param', 'Parameters for the resolver.'),
    },
  },
  Param: {
    doc: 'A value passed to a parameter.',
    fields: {
      name: s('The parameter\'s name.', { required: true }),
      value: o('any', 'A string, an array or an object; may use $(params...) and $(tasks.NAME.results...).', { required: true }),
    },
  },
  Matrix: {
    doc: 'Fan-out of a pipeline task.',
    fields: {
      params: l('Param', 'Array values; one TaskRun runs per combination.'),
      include: l('MatrixInclude', 'Extra combinations, or extra params added to matching ones.'),
    },
  },
  MatrixInclude: { doc: 'An explicit combination.', fields: { name: s('A name for the combination.'), params: l('Param', 'Its param values.') } },
  WorkspacePipelineTaskBinding: {
    doc: 'Maps a Task workspace to a Pipeline workspace.',
    fields: {
      name: s('The Task\'s workspace name.', { required: true }),
      workspace: s('The Pipeline\'s workspace name (defaults to the same name).'),
      subPath: s('Give the Task only this directory of the workspace.'),
    },
  },
  WhenExpression: {
    doc: 'A guard: input compared against values.',
    fields: {
      input: s('The value to test, often a param or a task result.'),
      operator: s('in or notin.', { values: ['in', 'notin'] }),
      values: l('string', 'The values input is compared with.'),
      cel: s('A CEL expression instead of input/operator/values (alpha).'),
    },
  },
  PipelineWorkspaceDeclaration: {
    doc: 'A workspace of the Pipeline.',
    fields: {
      name: s('The workspace name.', { required: true }),
      description: s('What it holds.'),
      optional: o('boolean', 'The run may leave it unbound.'),
    },
  },
  PipelineResult: {
    doc: 'A value the Pipeline reports.',
    fields: {
      name: s('The result name.', { required: true }),
      type: s('string, array or object.', { values: PARAM_TYPES }),
      description: s('What it holds.'),
      value: o('any', 'Where it comes from, e.g. $(tasks.build.results.digest).', { required: true }),
    },
  },

  // ---- Runs ----
  PipelineRunSpec: {
    doc: 'One execution of a Pipeline.',
    fields: {
      pipelineRef: o('PipelineRef', 'The Pipeline to run.'),
      pipelineSpec: o('PipelineSpec', 'An inline Pipeline instead of a reference.'),
      params: l('Param', 'Values for the Pipeline\'s params.'),
      workspaces: l('WorkspaceBinding', 'The volumes that back the Pipeline\'s workspaces.'),
      timeouts: o('Timeouts', 'Time limits for the whole run, its tasks and its finally tasks.'),
      taskRunTemplate: o('TaskRunTemplate', 'Defaults for every TaskRun: service account, pod template.'),
      taskRunSpecs: l('any', 'Per-task overrides (service account, pod template, resources).'),
      status: s('Set to cancel or hold the run.', { values: ['Cancelled', 'CancelledRunFinally', 'StoppedRunFinally', 'PipelineRunPending'] }),
    },
  },
  Timeouts: {
    doc: 'Time limits of a PipelineRun.',
    fields: {
      pipeline: o('duration', 'For the whole run, e.g. 1h. 0 means no limit.'),
      tasks: o('duration', 'For the tasks (not finally).'),
      finally: o('duration', 'For the finally tasks.'),
    },
  },
  TaskRunTemplate: {
    doc: 'Defaults for the run\'s TaskRuns.',
    fields: { serviceAccountName: s('The service account the pods run as.'), podTemplate: o('map', 'Pod settings: node selector, tolerations, security context...') },
  },
  WorkspaceBinding: {
    doc: 'Backs a workspace with a volume.',
    fields: {
      name: s('The workspace name.', { required: true }),
      subPath: s('Use only this directory of the volume.'),
      emptyDir: o('map', 'A fresh empty directory that lives as long as the run: emptyDir: {}'),
      persistentVolumeClaim: o('map', 'An existing claim: claimName: NAME'),
      volumeClaimTemplate: o('map', 'A claim created for this run.'),
      configMap: o('map', 'The files of a ConfigMap (read-only).'),
      secret: o('map', 'The files of a Secret (read-only).'),
      projected: o('map', 'Several sources in one directory.'),
      csi: o('map', 'A CSI volume.'),
    },
  },
  TaskRunSpec: {
    doc: 'One execution of a Task.',
    fields: {
      taskRef: o('TaskRef', 'The Task to run.'),
      taskSpec: o('TaskSpec', 'An inline Task instead of a reference.'),
      params: l('Param', 'Values for the Task\'s params.'),
      workspaces: l('WorkspaceBinding', 'Volumes for the Task\'s workspaces.'),
      serviceAccountName: s('The service account the pod runs as.'),
      timeout: o('duration', 'Time limit for the TaskRun, e.g. 10m.'),
      retries: o('integer', 'How many more times to try after a failure.'),
      podTemplate: o('map', 'Pod settings.'),
      computeResources: o('ResourceRequirements', 'Resources for the whole Task.'),
      stepSpecs: l('any', 'Per-step resource overrides.'),
      sidecarSpecs: l('any', 'Per-sidecar resource overrides.'),
      status: s('Set to TaskRunCancelled to cancel.', { values: ['TaskRunCancelled'] }),
    },
  },
  StepActionSpec: {
    doc: 'A reusable step that Tasks reference with ref.',
    fields: {
      description: s('What the action does.'),
      image: s('The container image.', { required: true }),
      script: s('A script to run.'),
      command: l('string', 'The entrypoint.'),
      args: l('string', 'Arguments.'),
      env: l('EnvVar', 'Environment variables.'),
      workingDir: s('Working directory.'),
      params: l('ParamSpec', 'Inputs of the action: $(params.NAME).'),
      results: l('StepResult', 'Values it produces: write to $(step.results.NAME.path).'),
      securityContext: o('map', 'Security settings.'),
      volumeMounts: l('VolumeMount', 'Volumes mounted into the container.'),
    },
  },
};
TYPES.EmbeddedTask.fields = { ...TYPES.TaskSpec.fields, metadata: TYPES.EmbeddedTask.fields.metadata };

const VERSIONS = { Task: ['tekton.dev/v1', 'tekton.dev/v1beta1'], Pipeline: ['tekton.dev/v1', 'tekton.dev/v1beta1'],
  PipelineRun: ['tekton.dev/v1', 'tekton.dev/v1beta1'], TaskRun: ['tekton.dev/v1', 'tekton.dev/v1beta1'], StepAction: ['tekton.dev/v1beta1', 'tekton.dev/v1alpha1'] };
const SPEC = { Task: 'TaskSpec', Pipeline: 'PipelineSpec', PipelineRun: 'PipelineRunSpec', TaskRun: 'TaskRunSpec', StepAction: 'StepActionSpec' };
const KIND_DOC = {
  Task: 'A Task: steps that run in order in one pod.',
  Pipeline: 'A Pipeline: Tasks arranged in a graph.',
  PipelineRun: 'A PipelineRun: one execution of a Pipeline.',
  TaskRun: 'A TaskRun: one execution of a Task.',
  StepAction: 'A StepAction: a reusable step.',
};
export const KINDS = Object.keys(SPEC);

for (const kind of KINDS) {
  TYPES[kind] = {
    doc: KIND_DOC[kind],
    fields: {
      apiVersion: s('The API group and version of this resource.', { values: VERSIONS[kind], required: true }),
      kind: s('The type of resource in this document.', { values: KINDS, required: true }),
      metadata: o('ObjectMeta', 'Name, labels and annotations.', { required: true }),
      spec: o(SPEC[kind], TYPES[SPEC[kind]].doc, { required: true }),
    },
  };
}
/** The type of a document whose kind is not known yet. */
TYPES.Document = { doc: 'A Tekton resource.', fields: { ...TYPES.Task.fields, kind: s('The type of resource in this document.', { values: KINDS }), spec: o('any', 'The resource\'s specification; its shape depends on kind.') } };

/**
 * Follows a YAML path ("spec", "steps", "[]", "name"...) from a document of `kind`. Returns
 * {type, field} where `type` is the object type at the end (or null) and `field` the last field.
 */
export function resolvePath(kind, path) {
  let type = TYPES[kind] ? kind : 'Document';
  let field = null;
  let pendingList = false;
  for (const seg of path) {
    if (seg === '[]') {
      if (!pendingList) return { type: null, field };
      pendingList = false;
      continue;
    }
    if (pendingList) return { type: null, field: null };
    const t = TYPES[type];
    const f = t?.fields?.[seg];
    if (!f) return { type: null, field: null };
    field = f;
    type = f.type;
    pendingList = !!f.list;
  }
  return { type: pendingList ? null : TYPES[type] ? type : null, field, inList: pendingList, elementType: pendingList && TYPES[type] ? type : null };
}

const s2 = (text) => text.replace(/^\n/, '');

/** Snippets: whole documents at the top, and list items keyed by the element type they create. */
export const SNIPPETS = {
  root: [
    { label: 'Task', detail: 'new Task', text: s2(`
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: §my-task
spec:
  description: What this task does.
  params:
    - name: message
      type: string
      default: hello
  steps:
    - name: main
      image: alpine
      script: |
        echo "$(params.message)"
`) },
    { label: 'Pipeline', detail: 'new Pipeline', text: s2(`
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: §my-pipeline
spec:
  params:
    - name: revision
      default: main
  workspaces:
    - name: source
  tasks:
    - name: build
      taskRef:
        name: build
      params:
        - name: revision
          value: $(params.revision)
      workspaces:
        - name: source
          workspace: source
`) },
    { label: 'PipelineRun', detail: 'run a Pipeline', text: s2(`
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: §my-pipeline-
spec:
  pipelineRef:
    name: my-pipeline
  params: []
  workspaces:
    - name: source
      emptyDir: {}
`) },
    { label: 'TaskRun', detail: 'run a Task', text: s2(`
apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  generateName: §my-task-
spec:
  taskRef:
    name: my-task
`) },
    { label: 'StepAction', detail: 'new StepAction', text: s2(`
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: §my-action
spec:
  params:
    - name: message
  image: alpine
  script: |
    echo "$(params.message)"
`) },
  ],
  Step: [{ label: 'step', detail: 'a script step', text: '- name: §step\n  image: alpine\n  script: |\n    echo hello\n' }],
  ParamSpec: [
    { label: 'param', detail: 'string param', text: '- name: §name\n  type: string\n  description: \n  default: ""\n' },
    { label: 'param (array)', detail: 'array param', text: '- name: §name\n  type: array\n  default: []\n' },
  ],
  Param: [{ label: 'param value', detail: 'name/value', text: '- name: §name\n  value: \n' }],
  WorkspaceDeclaration: [{ label: 'workspace', detail: 'declare a workspace', text: '- name: §source\n  description: \n' }],
  PipelineWorkspaceDeclaration: [{ label: 'workspace', detail: 'declare a workspace', text: '- name: §source\n' }],
  WorkspacePipelineTaskBinding: [{ label: 'workspace', detail: 'bind a workspace', text: '- name: §source\n  workspace: source\n' }],
  WorkspaceBinding: [{ label: 'workspace (emptyDir)', detail: 'bind to a fresh dir', text: '- name: §source\n  emptyDir: {}\n' }],
  TaskResult: [{ label: 'result', detail: 'declare a result', text: '- name: §name\n  description: \n' }],
  PipelineResult: [{ label: 'result', detail: 'pipeline result', text: '- name: §name\n  value: $(tasks.TASK.results.NAME)\n' }],
  PipelineTask: [
    { label: 'task (taskRef)', detail: 'run a stored Task', text: '- name: §task\n  taskRef:\n    name: \n  runAfter: []\n  params: []\n' },
    { label: 'task (taskSpec)', detail: 'inline Task', text: '- name: §task\n  taskSpec:\n    steps:\n      - name: main\n        image: alpine\n        script: |\n          echo hello\n' },
  ],
  EnvVar: [{ label: 'env var', detail: 'name/value', text: '- name: §NAME\n  value: ""\n' }],
  WhenExpression: [{ label: 'when', detail: 'guard', text: '- input: §"$(params.flag)"\n  operator: in\n  values: ["true"]\n' }],
};
