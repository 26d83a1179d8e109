/**
 * The Cognito app client as synthesized: a secret (so only the API, which holds it, can sign users
 * in or start a password reset), no OAuth flows or callback URLs, and the secret read at run time
 * by the auth function alone (DescribeUserPoolClient), never written into a template.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/build-app.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
interface Statement {
  Action: string | string[];
  Resource: unknown;
}

let stateful: Template;
let stateless: Template;

beforeAll(() => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-cdk-cognito-'));
  const built = buildApp({ outdir, context: { stage: 'test' } });
  built.app.synth();
  stateful = Template.fromStack(built.stateful);
  stateless = Template.fromStack(built.stateless);
}, 120_000);

/** Every IAM statement of a function's role policies, by the function's logical-id prefix. */
function statementsOf(fnPrefix: string): Statement[] {
  const policies = stateless.findResources('AWS::IAM::Policy') as Resources;
  return Object.entries(policies)
    .filter(([id]) => id.startsWith(fnPrefix))
    .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}
const actions = (st: Statement) => (Array.isArray(st.Action) ? st.Action : [st.Action]);

describe('Cognito app client', () => {
  it('has a secret and no OAuth: no flows, scopes, callback or logout URLs', () => {
    const clients = stateful.findResources('AWS::Cognito::UserPoolClient') as Resources;
    expect(Object.keys(clients)).toHaveLength(1);
    const props = Object.values(clients)[0]?.Properties ?? {};
    expect(props.GenerateSecret).toBe(true);
    for (const k of ['AllowedOAuthFlows', 'AllowedOAuthScopes', 'CallbackURLs', 'LogoutURLs'])
      expect(props[k], k).toBeUndefined();
    expect(props.AllowedOAuthFlowsUserPoolClient ?? false).toBe(false);
    // Password sign-in by the API only (Cognito always allows refresh-token use).
    expect(props.ExplicitAuthFlows).toEqual(['ALLOW_USER_PASSWORD_AUTH']);
    stateful.hasResourceProperties('AWS::Cognito::UserPool', {
      AccountRecoverySetting: { RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] },
    });
  });

  it('the secret is in no template: nothing reads the ClientSecret attribute', () => {
    for (const t of [stateful, stateless]) expect(JSON.stringify(t.toJSON())).not.toContain('ClientSecret');
    const fns = stateless.findResources('AWS::Lambda::Function') as Resources;
    for (const fn of Object.values(fns)) {
      const env = (fn.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)
        ?.Variables;
      expect(Object.keys(env ?? {}).some((k) => /SECRET/i.test(k))).toBe(false);
    }
  });

  it('the auth function alone may read the secret, undo a registration and sign a user out everywhere', () => {
    const needed = [
      'cognito-idp:DescribeUserPoolClient',
      'cognito-idp:AdminDeleteUser',
      'cognito-idp:AdminUserGlobalSignOut',
    ];
    const granting = statementsOf('Fnauth').filter((st) => needed.every((a) => actions(st).includes(a)));
    expect(granting).toHaveLength(1);
    // On the one user pool, not on every pool of the account.
    expect(granting[0]?.Resource).toEqual({ 'Fn::ImportValue': expect.stringContaining('Users') });
    const cognitoActions = (g: string) =>
      statementsOf(g)
        .flatMap(actions)
        .filter((a) => a.startsWith('cognito-idp:'))
        .sort();
    for (const g of ['Fnfolders', 'Fnfiles', 'Fnuploads', 'Fnaccount', 'Fnshares', 'Fnsystem'])
      expect(cognitoActions(g), g).toEqual([]);
    // The admin API moves users between the groups (PATCH /v1/admin/users/{id}), and nothing more.
    expect(cognitoActions('Fnadmin')).toEqual([
      'cognito-idp:AdminAddUserToGroup',
      'cognito-idp:AdminRemoveUserFromGroup',
    ]);
  });
});
