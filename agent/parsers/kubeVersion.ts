// Kubernetes version strings as the API server (/version gitVersion) and the kubelet
// (Node status.nodeInfo.kubeletVersion) report them: "v1.26.0", "v1.29.0-rc.1", and the vendor
// builds that carry the upstream version they are based on plus their own tag:
// "v1.27.3+k3s1", "v1.30.0+rke2r1", "v1.27.6+b49f9d1" (OpenShift), "v1.28.5-eks-5e0fdde",
// "v1.29.1-gke.1589000". Vendors backport security fixes into their builds without changing the
// upstream patch number, so for them the upstream number alone does not say whether a fix is in.

export interface KubeVersion {
  /** The string as reported, trimmed. */
  raw: string;
  major: number;
  minor: number;
  patch: number;
  /** An upstream pre-release ("alpha.2", "beta.0", "rc.1"), compared by semver precedence. */
  preRelease?: string;
  /** What a vendor appended ("+k3s1", "-eks-5e0fdde", "-gke.1589000"); absent for upstream builds. */
  vendorTag?: string;
}

const VERSION = /^v?(\d{1,4})\.(\d{1,4})\.(\d{1,6})(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/;
/** Upstream pre-releases; git builds add commit counts ("alpha.0.1234"), still upstream. */
const UPSTREAM_PRE_RELEASE = /^(?:alpha|beta|rc)(?:\.\d+)*$/;

/** The version in a gitVersion / kubeletVersion string, or undefined when it is not one. */
export function parseKubeVersion(text: string): KubeVersion | undefined {
  const raw = text.trim();
  const m = VERSION.exec(raw);
  if (m === null) return undefined;
  const [, major, minor, patch, suffix, build] = m;
  const version: KubeVersion = {
    raw,
    major: Number(major),
    minor: Number(minor),
    patch: Number(patch),
  };
  if (suffix !== undefined) {
    if (UPSTREAM_PRE_RELEASE.test(suffix)) version.preRelease = suffix;
    else version.vendorTag = `-${suffix}`;
  }
  // Anything after "+" is someone's build metadata: k3s, RKE2, OpenShift, or a local build.
  if (build !== undefined) version.vendorTag = `${version.vendorTag ?? ''}+${build}`;
  return version;
}

/** A vendor build: its fixes may not match the upstream patch number it reports. */
export function isVendorBuild(version: KubeVersion): boolean {
  return version.vendorTag !== undefined;
}

/** "1.26.0" (no "v", no pre-release, no vendor tag): the upstream release it is based on. */
export function coreVersion(version: Pick<KubeVersion, 'major' | 'minor' | 'patch'>): string {
  return `${version.major}.${version.minor}.${version.patch}`;
}

/**
 * Semver precedence of two versions; the vendor tag is ignored (it is build metadata, or a
 * vendor's suffix on the upstream number). A pre-release comes before its release:
 * 1.12.3-rc.0 < 1.12.3.
 */
export function compareKubeVersions(
  a: Pick<KubeVersion, 'major' | 'minor' | 'patch' | 'preRelease'>,
  b: Pick<KubeVersion, 'major' | 'minor' | 'patch' | 'preRelease'>,
): number {
  return (
    a.major - b.major ||
    a.minor - b.minor ||
    a.patch - b.patch ||
    comparePreReleases(a.preRelease, b.preRelease)
  );
}

function comparePreReleases(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  const as = a.split('.');
  const bs = b.split('.');
  for (let i = 0; i < Math.max(as.length, bs.length); i++) {
    const x = as[i];
    const y = bs[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    // Semver: numeric identifiers compare numerically and sort before alphanumeric ones.
    if (xn && yn) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (xn !== yn) {
      return xn ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}
