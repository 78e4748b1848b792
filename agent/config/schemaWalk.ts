// Reading the config schema's structure (for env-var names and "did you mean" hints).
import type * as v from 'valibot';

export type AnySchema = v.GenericSchema | v.GenericSchemaAsync;

interface SchemaShape {
  type: string;
  wrapped?: AnySchema;
  entries?: Record<string, AnySchema>;
  value?: AnySchema;
}

/** The schema under optionals (a valibot pipe keeps its base schema's type). */
function unwrap(schema: AnySchema): SchemaShape {
  let current = schema as unknown as SchemaShape;
  for (let i = 0; i < 20; i++) {
    if (
      ['optional', 'nullable', 'nullish'].includes(current.type) &&
      current.wrapped !== undefined
    ) {
      current = current.wrapped;
    } else break;
  }
  return current;
}

export type SchemaNode =
  | { kind: 'object'; keys: string[]; child: (key: string) => AnySchema | undefined }
  | { kind: 'record'; child: () => AnySchema }
  | { kind: 'leaf'; type: string };

export function describeSchema(schema: AnySchema): SchemaNode {
  const inner = unwrap(schema);
  if ((inner.type === 'strict_object' || inner.type === 'object') && inner.entries !== undefined) {
    const entries = inner.entries;
    return { kind: 'object', keys: Object.keys(entries), child: (key) => entries[key] };
  }
  if (inner.type === 'record' && inner.value !== undefined) {
    const value = inner.value;
    return { kind: 'record', child: () => value };
  }
  return { kind: 'leaf', type: inner.type };
}

/** Keys known at a path of the schema (for "did you mean"), or [] when it is not an object. */
export function keysAt(schema: AnySchema, path: readonly PropertyKey[]): string[] {
  let node: AnySchema | undefined = schema;
  for (const segment of path) {
    if (node === undefined) return [];
    const described = describeSchema(node);
    if (described.kind === 'object') node = described.child(String(segment));
    else if (described.kind === 'record') node = described.child();
    else return [];
  }
  if (node === undefined) return [];
  const described = describeSchema(node);
  return described.kind === 'object' ? described.keys : [];
}
