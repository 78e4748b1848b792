// `kubelet-cert`: the kubelet's client certificate, the identity it talks to the API server
// with. Once it has expired the API server answers every kubelet request with 401 Unauthorized
// (the kubelet logs only "Unauthorized", not why) and the node goes NotReady; the kubelet cannot
// renew it itself any more. So: a warning days before (checks.kubelet-cert.warnBefore), and the
// KubeletClientCertExpired cause, as a live fact, once it has expired.
//
// The file (kubelet-client-current.pem, a link to a dated file) holds the private key too: only
// the CERTIFICATE block is parsed, and nothing else from the file is ever logged or reported.
import * as v from 'valibot';
import { duration, hostPath } from '../../config/configSchema.ts';
import { durationMs } from '../../config/duration.ts';
import { CAUSE_REMEDIATION } from '../../findings/causes.ts';
import type { FindingDraft } from '../../findings/finding.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check } from '../check.ts';

const options = {
  /** The kubelet's client certificate (host path); a link is followed inside the host root. */
  path: v.optional(hostPath, '/var/lib/kubelet/pki/kubelet-client-current.pem'),
  /** Warn this long before it expires. */
  warnBefore: v.optional(duration(0), '7d'),
};

/** Where k3s keeps the kubelet's client certificate (and RKE2 under /var/lib/rancher/rke2). */
const K3S_CLIENT_CERT = '/var/lib/rancher/k3s/agent/client-kubelet.crt';
const CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/;
const DAY_MS = 24 * 3600 * 1000;

export interface CertificateFacts {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
}

/** The certificate in a PEM file's text (the first CERTIFICATE block), or undefined. */
async function readCertificate(pem: string): Promise<CertificateFacts | undefined> {
  const block = CERTIFICATE.exec(pem)?.[0];
  if (block === undefined) return undefined;
  // node:crypto only when a certificate is there to read: most runs of the agent need none of it.
  const { X509Certificate } = await import('node:crypto');
  const cert = new X509Certificate(block);
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    issuer: cert.issuer.replaceAll('\n', ', '),
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
  };
}

export const kubeletCertCheck: Check<typeof options> = {
  id: 'kubelet-cert',
  title: "kubelet's client certificate",
  description:
    "Reads the kubelet's client certificate and warns before it expires; expired, it is the node's NotReady cause.",
  defaults: { enabled: true, interval: '1h', timeout: '10s' },
  options,
  async run({ host, options }) {
    const resolved = await host.resolve(options.path);
    const pem = await host.readText(resolved, { alreadyResolved: true });
    const where = resolved === options.path ? options.path : `${options.path} -> ${resolved}`;
    // No certificate at this path: not a kubelet node, or one that keeps it elsewhere. Not "ok":
    // the expiry is not watched, and the reason says where to point the check.
    if (pem === null) {
      return {
        findings: [],
        skipped: `no kubelet client certificate at ${where}; on a kubelet node set checks.kubelet-cert.path to it (k3s: ${K3S_CLIENT_CERT})`,
      };
    }
    const cert = await readCertificate(pem);
    if (cert === undefined) {
      return {
        findings: [
          {
            id: 'KubeletClientCertUnreadable',
            problem: 'KubeletClientCertUnreadable',
            severity: 'warning',
            title: "kubelet's client certificate file holds no certificate",
            message: `${where} has no PEM CERTIFICATE block, so its expiry cannot be checked.`,
            evidence: [where],
          },
        ],
      };
    }
    const now = Date.now();
    const samples: MetricSample[] = [
      {
        metric: 'node_auditor_kubelet_client_cert_expiry_timestamp_seconds',
        labels: {},
        value: Math.floor(cert.notAfter.getTime() / 1000),
      },
    ];
    const evidence = [
      where,
      `subject: ${cert.subject}`,
      `issuer: ${cert.issuer}`,
      `valid from ${cert.notBefore.toISOString()} until ${cert.notAfter.toISOString()}`,
    ];
    const findings: FindingDraft[] = [];
    const left = cert.notAfter.getTime() - now;
    if (left <= 0) {
      findings.push({
        id: 'KubeletClientCertExpired',
        problem: 'KubeletClientCertExpired',
        cause: 'KubeletClientCertExpired',
        severity: 'critical',
        title: "kubelet's client certificate has expired",
        message: `The kubelet's client certificate expired at ${cert.notAfter.toISOString()}: the API server rejects the kubelet (401 Unauthorized) and the node goes NotReady.`,
        evidence,
        remediation: { summary: CAUSE_REMEDIATION.KubeletClientCertExpired, automatic: false },
      });
    } else if (cert.notBefore.getTime() > now) {
      findings.push({
        id: 'KubeletClientCertNotYetValid',
        problem: 'KubeletClientCertNotYetValid',
        severity: 'critical',
        title: "kubelet's client certificate is not valid yet (is the clock right?)",
        message: `The kubelet's client certificate is valid only from ${cert.notBefore.toISOString()}; this node's clock says ${new Date(now).toISOString()}. The API server will reject the kubelet until then: check the node's time synchronisation.`,
        evidence,
        remediation: {
          summary:
            'Fix the node\'s clock ("timedatectl", chrony or systemd-timesyncd), then "systemctl restart kubelet".',
          automatic: false,
        },
      });
    } else if (left <= durationMs(options.warnBefore)) {
      const days = Math.max(0, Math.floor(left / DAY_MS));
      findings.push({
        id: 'KubeletClientCertExpiring',
        problem: 'KubeletClientCertExpiring',
        severity: 'warning',
        title: `kubelet's client certificate expires in ${days === 0 ? 'less than a day' : `${days} day${days === 1 ? '' : 's'}`}`,
        message: `The kubelet's client certificate expires at ${cert.notAfter.toISOString()}. When it does, the API server rejects the kubelet and the node goes NotReady. With rotateCertificates the kubelet renews it itself well before that, so it not being renewed yet means rotation is off or failing.`,
        evidence,
        remediation: {
          summary:
            'Check that kubelet rotates its certificate (rotateCertificates: true in /var/lib/kubelet/config.yaml, and "journalctl -u kubelet | grep certificate_manager" for rotation errors) and that its CSRs are approved ("kubectl get csr"); renew it before expiry, or re-bootstrap the kubelet.',
          automatic: false,
        },
      });
    }
    return { findings, samples };
  },
};
