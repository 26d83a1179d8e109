/**
 * How the aws profile connects to its database. Apart from aws-container.ts so the migration
 * function bundles only this and the driver, not the whole service graph.
 */
import { DsqlSigner } from '@aws-sdk/dsql-signer';
import { Signer as RdsSigner } from '@aws-sdk/rds-signer';
import type { PgOptions } from '../shared/adapters/postgres/pg-database.ts';

/** The one DSQL role that may change the schema and the roles; only the migration logs in as it. */
export const DSQL_ADMIN_USER = 'admin';

/**
 * No stored passwords for the AWS stores: every new connection presents a short-lived IAM token
 * signed with the function's role, so nothing secret sits in configuration.
 * - Aurora DSQL (`*.dsql.<region>.on.aws`): 15-minute tokens for the URL's user. The functions log
 *   in as the application role (`dsql:DbConnect`; the migration maps their IAM roles to it with
 *   `AWS IAM GRANT`); only the migration logs in as `admin` (`dsql:DbConnectAdmin`).
 * - Aurora / RDS (`*.rds.amazonaws.com`): `rds-db:connect` for the URL's user (which has `rds_iam`).
 * Any other PostgreSQL uses the URL as given.
 */
export function databaseOptions(url: string, region: string): PgOptions {
  const u = new URL(url);
  const host = u.hostname;
  if (/\.dsql(-[a-z0-9]+)?\.[a-z0-9-]+\.on\.aws$/.test(host)) {
    const signer = new DsqlSigner({ hostname: host, region, expiresIn: 900 });
    const admin = decodeURIComponent(u.username) === DSQL_ADMIN_USER;
    return {
      connectionString: url,
      max: 2,
      dialect: 'dsql',
      password: () => (admin ? signer.getDbConnectAdminAuthToken() : signer.getDbConnectAuthToken()),
    };
  }
  if (/\.rds\.amazonaws\.com$/.test(host) && !u.password) {
    const signer = new RdsSigner({
      hostname: host,
      port: Number(u.port || 5432),
      username: decodeURIComponent(u.username),
      region,
    });
    return { connectionString: url, max: 2, password: () => signer.getAuthToken() };
  }
  return { connectionString: url, max: 2 };
}
