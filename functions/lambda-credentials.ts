/**
 * The bundled functions' stand-in for the AWS SDK's default credential chain
 * (`@aws-sdk/credential-provider-node`; esbuild's alias swaps it in, see infra/bundling.ts). Lambda
 * hands a function its execution role's credentials in the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and a container credentials endpoint where that is how
 * it delivers them. The rest of the default chain (SSO, shared config files, credential processes,
 * web identity tokens, EC2 instance metadata) never answers there, yet carried about 100 KiB and
 * 20 ms into every cold start. Tests and the local runtime import the SDK unbundled: they keep the
 * whole chain.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { fromHttp } from '@aws-sdk/credential-provider-http';

type Init = Parameters<typeof fromEnv>[0] & Parameters<typeof fromHttp>[0];
type Provider = ReturnType<typeof fromEnv>;
type AwsCredentialIdentity = Awaited<ReturnType<Provider>>;

export const defaultProvider = (init: Init = {}): Provider => {
  const env = fromEnv(init);
  if (!process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI && !process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)
    return env;
  const container = fromHttp(init);
  return (props) => env(props).catch(() => container(props));
};

// The rest of the module's interface, as @aws-sdk/credential-provider-node defines it.
export const credentialsWillNeedRefresh = (credentials?: AwsCredentialIdentity) =>
  credentials?.expiration !== undefined;
export const credentialsTreatedAsExpired = (credentials?: AwsCredentialIdentity) =>
  credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300_000;
