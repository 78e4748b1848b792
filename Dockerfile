# node-auditor: the build stage runs the same `npm ci` (which builds the bundle in `prepare`)
# as CI; the runtime stage holds Node and one bundled file.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund

FROM node:24-bookworm-slim
COPY --from=build /src/dist/node-auditor.cjs /src/dist/node-auditor.cjs.map /src/dist/kubernetes-cves.json /app/
# The sysctl check reads /proc/sys and /etc/sysctl.d, which any user may read.
USER node
ENTRYPOINT ["node", "/app/node-auditor.cjs"]
CMD ["run", "--host-root", "/host"]
