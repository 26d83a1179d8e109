/**
 * Cognito as the aws profile's identity provider. Imported by the entries of the functions that
 * register, sign in or change roles (auth, admin, maintenance); the others read roles from the
 * users table and never call Cognito, so their bundles carry no Cognito client.
 */
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { CognitoIdentityProvider } from '../shared/adapters/cognito/cognito-identity-provider.ts';
import type { AwsIdentity } from './aws-container.ts';

export const cognitoIdentity: AwsIdentity = {
  provider: (config, sdk) =>
    new CognitoIdentityProvider(sdk(new CognitoIdentityProviderClient({ region: config.AWS_REGION })), {
      userPoolId: config.STRATUS_USER_POOL_ID,
      clientId: config.STRATUS_USER_POOL_CLIENT_ID,
      rotation: true,
    }),
};
