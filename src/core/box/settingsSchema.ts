import manifest from '../../../package.json';
import { SandboxError } from '../errors';

/**
 * The limits of every `agentSandbox.*` setting come from one place: the configuration schema in
 * package.json, which VS Code's Settings editor enforces and the engine server checks again here (a
 * standalone client or a hand-edited settings.json can send anything). esbuild bundles the manifest in.
 */
interface SchemaProperty {
  type?: string | string[];
  minimum?: number;
  maximum?: number;
  enum?: readonly unknown[];
  items?: { pattern?: string };
}

const properties = manifest.contributes.configuration.properties as Record<string, SchemaProperty>;

function property(key: string): SchemaProperty {
  const schema = properties[`agentSandbox.${key}`];
  if (!schema) throw new SandboxError('internal', `package.json declares no setting agentSandbox.${key}.`);
  return schema;
}

/** The inclusive range of a numeric setting, as package.json declares it. */
export function schemaRange(key: string): { min: number; max: number } {
  const { minimum, maximum } = property(key);
  if (typeof minimum !== 'number' || typeof maximum !== 'number') {
    throw new SandboxError('internal', `package.json gives agentSandbox.${key} no minimum and maximum.`);
  }
  return { min: minimum, max: maximum };
}

/** The allowed values of an enum setting, as package.json declares them. */
export function schemaEnum(key: string): readonly unknown[] {
  const values = property(key).enum;
  if (!values) throw new SandboxError('internal', `package.json gives agentSandbox.${key} no enum.`);
  return values;
}

/** The pattern every item of a list setting must match, as package.json declares it. */
export function schemaItemPattern(key: string): RegExp {
  const pattern = property(key).items?.pattern;
  if (!pattern) throw new SandboxError('internal', `package.json gives the items of agentSandbox.${key} no pattern.`);
  return new RegExp(pattern);
}
