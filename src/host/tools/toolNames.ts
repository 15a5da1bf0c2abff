/**
 * The agent tools: their names (`languageModelTools[].name` in package.json, what `vscode.lm.invokeTool`
 * takes) and the `toolReferenceName` users type after `#` and custom agents list. The reference names carry a
 * `sandbox` prefix so they never alias a built-in tool (`readFile`, `runInTerminal`, …) in a tools list.
 */
export const sandboxTools = [
  { name: 'agentSandbox_runCommand', referenceName: 'sandboxRunCommand' },
  { name: 'agentSandbox_readFile', referenceName: 'sandboxReadFile' },
  { name: 'agentSandbox_listDirectory', referenceName: 'sandboxListDirectory' },
  { name: 'agentSandbox_writeFile', referenceName: 'sandboxWriteFile' },
  { name: 'agentSandbox_editFile', referenceName: 'sandboxEditFile' },
  { name: 'agentSandbox_applyPatch', referenceName: 'sandboxApplyPatch' },
  { name: 'agentSandbox_deleteFile', referenceName: 'sandboxDeleteFile' },
  { name: 'agentSandbox_pendingChanges', referenceName: 'sandboxPendingChanges' },
] as const;

export type SandboxToolName = (typeof sandboxTools)[number]['name'];

/** The tag every sandbox tool carries in `vscode.lm.tools`, so other extensions can find them. */
export const sandboxToolTag = 'agent-sandbox';
