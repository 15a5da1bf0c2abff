import { sandboxToolDefinitions } from '../../core/tools/toolDefinitions';

/**
 * The agent tools: their names (`languageModelTools[].name` in package.json, what `vscode.lm.invokeTool`
 * takes) and the `toolReferenceName` users type after `#` and custom agents list — from the one definition of
 * each tool in `src/core/tools/toolDefinitions.ts`.
 */
export const sandboxTools = sandboxToolDefinitions.map(({ name, referenceName }) => ({ name, referenceName }));

export { sandboxToolTag, type SandboxToolName } from '../../core/tools/toolDefinitions';
