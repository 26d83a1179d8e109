/**
 * Reads what each function's role may do from the synthesized stateless template: every Allow
 * statement of the role's inline policies, with cross-stack references rendered as ARNs of named
 * placeholders (BLOBS, STATE, USERPOOL, METADATA) so recorded commands can be matched to them.
 */
import type { CfnElement, Stack } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';

export const PLACEHOLDER = {
  bucketArn: 'arn:aws:s3:::BLOBS',
  tableArn: 'arn:aws:dynamodb:REGION:ACCOUNT:table/STATE',
  userPoolArn: 'arn:aws:cognito-idp:REGION:ACCOUNT:userpool/USERPOOL',
  clusterArn: 'arn:aws:dsql:REGION:ACCOUNT:cluster/METADATA',
  clusterEndpoint: 'metadata0example.dsql.us-east-1.on.aws',
};

export interface Statement {
  actions: string[];
  resources: string[];
}

type Cfn = unknown;
type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

/** Renders a CloudFormation value to a string, replacing the named imports by their placeholders. */
export function render(v: Cfn, imports: Record<string, string>): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => render(x, imports)).join(',');
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Fn::ImportValue' in o) {
      const name = String(o['Fn::ImportValue']);
      return imports[name] ?? `<import ${name}>`;
    }
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, Cfn[]];
      return parts.map((p) => render(p, imports)).join(sep);
    }
    if ('Ref' in o) {
      const ref = String(o.Ref);
      return ref === 'AWS::Partition'
        ? 'aws'
        : ref === 'AWS::Region'
          ? 'REGION'
          : ref === 'AWS::AccountId'
            ? 'ACCOUNT'
            : `<ref ${ref}>`;
    }
    if ('Fn::GetAtt' in o) return `<getatt ${(o['Fn::GetAtt'] as string[]).join('.')}>`;
  }
  return JSON.stringify(v);
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** The Allow statements of the inline policies attached to `fn`'s role in `template`. */
export function roleStatements(
  stack: Stack,
  template: Template,
  fn: IFunction,
  imports: Record<string, string>,
): Statement[] {
  const role = fn.role;
  if (!role) throw new Error(`${fn.node.path} has no role`);
  const roleId = stack.getLogicalId(role.node.defaultChild as CfnElement);
  const out: Statement[] = [];
  for (const r of Object.values(template.Resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const roles = list(r.Properties.Roles) as { Ref?: string }[];
    if (!roles.some((x) => x.Ref === roleId)) continue;
    const doc = r.Properties.PolicyDocument as { Statement: Record<string, unknown>[] };
    for (const st of doc.Statement) {
      if (st.Effect !== 'Allow') continue;
      out.push({
        actions: list(st.Action).map(String),
        resources: list(st.Resource).map((x) => render(x, imports)),
      });
    }
  }
  return out;
}

const glob = (pattern: string, flags = '') =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, flags);

/**
 * The grants that allow `action` on `resourceArn`, each as `<statement index>:<action pattern>`;
 * empty when none does.
 */
export function allowing(statements: Statement[], action: string, resourceArn: string): string[] {
  const hits: string[] = [];
  statements.forEach((st, i) => {
    if (!st.resources.some((p) => glob(p).test(resourceArn))) return;
    for (const p of st.actions) if (glob(p, 'i').test(action)) hits.push(`${i}:${p}`);
  });
  return hits;
}

/** The environment variable `name` of `fn` in the template, rendered. */
export function functionEnv(
  stack: Stack,
  template: Template,
  fn: IFunction,
  name: string,
  imports: Record<string, string>,
): string | undefined {
  const id = stack.getLogicalId(fn.node.defaultChild as CfnElement);
  const vars = (template.Resources[id]?.Properties.Environment as { Variables?: Record<string, Cfn> })
    ?.Variables;
  return vars?.[name] === undefined ? undefined : render(vars[name], imports);
}
