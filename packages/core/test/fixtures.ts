/** The seed's two manifests, exactly as the owner wrote them (after YAML parsing). */
export const seedGenerator = {
  apiVersion: "generators.external-secrets.io/v1alpha1",
  kind: "GitlabDeployToken",
  metadata: { name: "gitlab-deploy-token" },
  spec: {
    url: "",
    projectID: "42",
    name: "eso-managed",
    scopes: ["read_repository", "read_registry"],
    expiresAt: "2027-01-01T00:00:00Z",
    username: "eso",
    auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
  },
}
export const seedExternalSecret = {
  apiVersion: "external-secrets.io/v1",
  kind: "ExternalSecret",
  metadata: { name: "gitlab-deploy-token" },
  spec: {
    refreshInterval: "1h",
    target: { name: "gitlab-deploy-token" },
    dataFrom: [
      {
        sourceRef: {
          generatorRef: { apiVersion: "generators.external-secrets.io/v1alpha1", kind: "GitlabDeployToken", name: "gitlab-deploy-token" },
        },
      },
    ],
  },
}
