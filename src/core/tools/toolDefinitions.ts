/**
 * The one definition of each sandbox tool: its name, what the model reads about it and its input schema. The
 * VS Code language model tools (`package.json` `contributes.languageModelTools`, registered in
 * `src/host/tools/sandboxTools.ts`) and the MCP server (`src/mcp/mcpServer.ts`) both serve these; a unit test
 * holds package.json to them. No `vscode`: both the extension host and the engine server load it.
 */

/** The subset of JSON Schema the tools' inputs use (what `checkToolInput` enforces). */
export interface ToolPropertySchema {
  type: 'string' | 'number' | 'integer' | 'boolean';
  description: string;
  minimum?: number;
  enum?: string[];
}

export interface ToolInputSchema {
  type: 'object';
  required?: string[];
  properties: Record<string, ToolPropertySchema>;
}

export interface SandboxToolDefinition {
  /** The tool's name on every surface (`vscode.lm.invokeTool`, MCP `tools/call`). */
  name: string;
  /** What users type after `#` in VS Code chat and custom agents list; `sandbox`-prefixed so it never aliases a built-in tool. */
  referenceName: string;
  displayName: string;
  /** A codicon, for VS Code. */
  icon: string;
  /** What a person reads in VS Code's tool pickers. */
  userDescription: string;
  /** What the model reads: VS Code's `modelDescription`, MCP's `description`. */
  modelDescription: string;
  inputSchema: ToolInputSchema;
}

/** What every tool says about where it acts. */
const IN_THE_BOX =
  ' It acts in the Agent Sandbox box: an isolated Docker container holding a copy of the workspace at /workspace, with no network unless the developer allowed some hosts (agentSandbox.network "allowlist": then only those, through a proxy the box\'s environment names). Nothing it does touches the real workspace: every change waits for the developer\'s review (accept or reject per file or hunk).';

function pathProperty(what: string): ToolPropertySchema {
  return { type: 'string', description: `${what} Relative to the workspace root (e.g. "src/app.ts"); it must stay inside the workspace.` };
}

export const sandboxToolDefinitions = [
  {
    name: 'agentSandbox_runCommand',
    referenceName: 'sandboxRunCommand',
    displayName: 'Run Command in Sandbox',
    icon: '$(terminal)',
    userDescription:
      'Run a shell command in the sandbox box (no network, or only the hosts you allowed; network "none" runs it offline); changes await your review.',
    modelDescription: `Runs a shell command with /bin/sh -c in the sandbox.${IN_THE_BOX} Use it to build, test, run scripts, git, grep/find, and to make changes no other tool can (mv, chmod, generated or binary files). Runs share the box's state, so later commands see earlier results. The internet and package registries are unreachable unless the developer allowed their hosts; a denied host answers HTTP 403 with a text naming the setting that allows it. Set network to "none" to run a command offline in any case (e.g. tests after an install): nothing leaves the box while it runs, and other runs and terminals in the box lose the network until it ends. git works on a fresh repository of the workspace as mirrored: one commit with HEAD's message, so git status and git diff show the box's changes; earlier history is not in the box. Returns the exit code, how the run ended (exited, timeout, cancelled, oom), the end of stdout and stderr (long output is cut from the start), and the files this run added, modified, renamed or deleted.`,
    inputSchema: {
      type: 'object',
      required: ['command'],
      properties: {
        command: { type: 'string', description: 'The command line, run by /bin/sh -c in the box, e.g. "npm test" or "ls -la src".' },
        cwd: { type: 'string', description: 'Working directory relative to the workspace root; defaults to the root.' },
        timeoutSeconds: {
          type: 'number',
          minimum: 0,
          description:
            'Seconds before the command and all its processes are killed; defaults to the agentSandbox.runTimeoutSeconds setting. 0 = no timeout.',
        },
        network: {
          type: 'string',
          enum: ['none'],
          description:
            '"none": run offline even when the box may reach allowed hosts (e.g. tests after an install). Enforced by the box\'s gateway, which refuses every connection while the command runs. Leave it out to use the box\'s network setting.',
        },
      },
    },
  },
  {
    name: 'agentSandbox_readFile',
    referenceName: 'sandboxReadFile',
    displayName: 'Read File in Sandbox',
    icon: '$(file)',
    userDescription: 'Read a file (or a range of its lines) from the sandbox box.',
    modelDescription: `Reads a UTF-8 text file from the sandbox box, whole or a range of lines (1-based, inclusive).${IN_THE_BOX} The box holds the workspace plus every change made in it so far, so read here rather than from the real workspace. Long files: read in ranges.`,
    inputSchema: {
      type: 'object',
      required: ['path'],
      properties: {
        path: pathProperty('File to read.'),
        startLine: { type: 'integer', minimum: 1, description: 'First line to return (1-based); defaults to 1.' },
        endLine: { type: 'integer', minimum: 1, description: 'Last line to return (inclusive); defaults to the end of the file.' },
      },
    },
  },
  {
    name: 'agentSandbox_listDirectory',
    referenceName: 'sandboxListDirectory',
    displayName: 'List Directory in Sandbox',
    icon: '$(folder)',
    userDescription: 'List a directory of the sandbox box.',
    modelDescription: `Lists the entries of a directory in the sandbox box, hidden ones included; directories end with "/".${IN_THE_BOX}`,
    inputSchema: {
      type: 'object',
      required: ['path'],
      properties: { path: pathProperty('Directory to list; "." or "" for the workspace root.') },
    },
  },
  {
    name: 'agentSandbox_writeFile',
    referenceName: 'sandboxWriteFile',
    displayName: 'Write File in Sandbox',
    icon: '$(new-file)',
    userDescription: 'Create or replace a file in the sandbox box; the change awaits your review.',
    modelDescription: `Creates a file, or replaces a file's whole content, in the sandbox box; parent directories are created.${IN_THE_BOX} For small changes to an existing file prefer agentSandbox_editFile or agentSandbox_applyPatch.`,
    inputSchema: {
      type: 'object',
      required: ['path', 'content'],
      properties: {
        path: pathProperty('File to write.'),
        content: { type: 'string', description: 'The complete new content of the file (UTF-8 text).' },
      },
    },
  },
  {
    name: 'agentSandbox_editFile',
    referenceName: 'sandboxEditFile',
    displayName: 'Edit File in Sandbox',
    icon: '$(edit)',
    userDescription: 'Replace exact text in a file of the sandbox box; the change awaits your review.',
    modelDescription: `Replaces exact text in a file in the sandbox box.${IN_THE_BOX} oldString must occur exactly once (include enough surrounding lines to make it unique), or set replaceAll to replace every occurrence. If it occurs 0 times, or several times without replaceAll, the tool fails with an error and changes nothing: read the file again and retry with its exact current text (whitespace and indentation included).`,
    inputSchema: {
      type: 'object',
      required: ['path', 'oldString', 'newString'],
      properties: {
        path: pathProperty('File to edit.'),
        oldString: { type: 'string', description: 'The exact text to replace, as it is in the file now (not empty).' },
        newString: { type: 'string', description: 'The text to put in its place (may be empty to delete).' },
        replaceAll: { type: 'boolean', description: 'Replace every occurrence of oldString instead of requiring exactly one. Default false.' },
      },
    },
  },
  {
    name: 'agentSandbox_applyPatch',
    referenceName: 'sandboxApplyPatch',
    displayName: 'Apply Patch in Sandbox',
    icon: '$(diff)',
    userDescription: 'Apply a unified diff to files of the sandbox box; the changes await your review.',
    modelDescription: `Applies a unified diff (the output of "diff -u" or "git diff") to files in the sandbox box: one or several files, modifications, new files (--- /dev/null), deletions (+++ /dev/null) and renames with changes.${IN_THE_BOX} Paths are relative to the workspace root; git's a/ and b/ prefixes are fine. Context lines must match the files exactly. All files apply or none: a malformed patch, or one whose hunks do not match the current content, fails with an error that names the file and hunk, and nothing is changed.`,
    inputSchema: {
      type: 'object',
      required: ['patch'],
      properties: {
        patch: {
          type: 'string',
          description: 'The unified diff: for each file a "--- old" and "+++ new" header, then "@@ -l,n +l,n @@" hunks with " ", "-" and "+" lines.',
        },
      },
    },
  },
  {
    name: 'agentSandbox_deleteFile',
    referenceName: 'sandboxDeleteFile',
    displayName: 'Delete File in Sandbox',
    icon: '$(trash)',
    userDescription: 'Delete a file or directory in the sandbox box; the deletion awaits your review.',
    modelDescription: `Deletes a file (or a directory with its contents) in the sandbox box.${IN_THE_BOX}`,
    inputSchema: { type: 'object', required: ['path'], properties: { path: pathProperty('File or directory to delete.') } },
  },
  {
    name: 'agentSandbox_pendingChanges',
    referenceName: 'sandboxPendingChanges',
    displayName: 'Pending Sandbox Changes',
    icon: '$(git-compare)',
    userDescription: 'List the changes in the sandbox box that await your review.',
    modelDescription: `Lists every change in the sandbox box that awaits the developer's review, compared with the workspace: counts by kind (added, modified, deleted, renamed, mode), each path, binary files, flagged paths that need a deliberate approval (they can run code on the developer's machine, or are under .git/), and entries refused as unsafe.${IN_THE_BOX} Call it before you report your work, and say that the changes await review.`,
    inputSchema: { type: 'object', properties: {} },
  },
] as const satisfies readonly SandboxToolDefinition[];

export type SandboxToolName = (typeof sandboxToolDefinitions)[number]['name'];

/** The tag every sandbox tool carries in `vscode.lm.tools`, so other extensions can find them. */
export const sandboxToolTag = 'agent-sandbox';

/** Bytes of JSON a tool input may take (a whole file written at once included); more is refused before it runs. */
export const MAX_TOOL_INPUT_BYTES = 8 * 1024 * 1024;

export function findToolDefinition(name: string): SandboxToolDefinition | undefined {
  return sandboxToolDefinitions.find((d) => d.name === name);
}

/** The definition as package.json's `contributes.languageModelTools` holds it. */
export function languageModelToolContribution(definition: SandboxToolDefinition): Record<string, unknown> {
  return {
    name: definition.name,
    toolReferenceName: definition.referenceName,
    displayName: definition.displayName,
    canBeReferencedInPrompt: true,
    icon: definition.icon,
    userDescription: definition.userDescription,
    modelDescription: definition.modelDescription,
    tags: [sandboxToolTag, 'sandbox'],
    inputSchema: definition.inputSchema,
  };
}

/**
 * Why `input` does not fit the tool's schema (a message naming the field and the fix), or undefined when it
 * fits. Both surfaces check with it: VS Code may pass model output unchecked, and an MCP client passes anything.
 */
export function checkToolInput(definition: SandboxToolDefinition, input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return `${definition.name} takes an object of named arguments, got ${input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input}.`;
  }
  const size = Buffer.byteLength(JSON.stringify(input), 'utf8');
  if (size > MAX_TOOL_INPUT_BYTES) {
    return `The arguments of ${definition.name} take ${(size / 1024 / 1024).toFixed(1)} MiB; the limit is ${MAX_TOOL_INPUT_BYTES / 1024 / 1024} MiB. Write large content in parts (agentSandbox_writeFile, then agentSandbox_applyPatch), or produce it with agentSandbox_runCommand.`;
  }
  const values = input as Record<string, unknown>;
  const known = Object.keys(definition.inputSchema.properties);
  for (const key of Object.keys(values)) {
    if (!known.includes(key)) {
      return `${definition.name} has no argument "${key}"; it takes ${known.length > 0 ? known.map((k) => `"${k}"`).join(', ') : 'no arguments'}.`;
    }
  }
  for (const key of definition.inputSchema.required ?? []) {
    if (values[key] === undefined) return `"${key}" is required: ${definition.inputSchema.properties[key].description}`;
  }
  for (const [key, schema] of Object.entries(definition.inputSchema.properties)) {
    const value = values[key];
    if (value === undefined) continue;
    const fits =
      schema.type === 'string'
        ? typeof value === 'string'
        : schema.type === 'boolean'
          ? typeof value === 'boolean'
          : typeof value === 'number' && Number.isFinite(value) && (schema.type === 'number' || Number.isInteger(value));
    const kind = schema.type === 'integer' ? 'a whole number' : schema.type === 'boolean' ? 'true or false' : `a ${schema.type}`;
    if (!fits) return `"${key}" must be ${kind}, got ${JSON.stringify(value)?.slice(0, 40) ?? typeof value}.`;
    if (schema.minimum !== undefined && (value as number) < schema.minimum)
      return `"${key}" must be ${schema.minimum} or more, got ${String(value)}.`;
    if (schema.enum && !schema.enum.includes(value as string)) {
      return `"${key}" must be ${schema.enum.map((e) => JSON.stringify(e)).join(' or ')}, got ${JSON.stringify(value).slice(0, 40)}.`;
    }
  }
  return undefined;
}
