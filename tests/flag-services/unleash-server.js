// A real Unleash server for the tests, on 127.0.0.1, backed by a PostgreSQL database.
// usage: node unleash-server.js DB_PORT DB_NAME PORT ADMIN_TOKEN CLIENT_TOKEN
// Prints "ready" once it serves. The admin token reaches every project and environment; the
// client token is an SDK's, for `default:production`.
const unleash = require('unleash-server');

const [dbPort, database, port, adminToken, clientToken] = process.argv.slice(2);
unleash
  .start({
    db: { host: '127.0.0.1', port: Number(dbPort), user: 'unleash', password: '', database, ssl: false },
    server: { host: '127.0.0.1', port: Number(port) },
    authentication: {
      initApiTokens: [
        { environment: '*', project: '*', secret: adminToken, type: 'admin', tokenName: 'launch-host-admin' },
        { environment: 'production', project: 'default', secret: clientToken, type: 'client', tokenName: 'sdk' },
      ],
    },
    // No calls home from a test machine.
    versionCheck: { enable: false },
    logLevel: 'warn',
  })
  .then(() => console.log('ready'))
  .catch((e) => {
    console.error(`unleash-server: ${e.stack || e}`);
    process.exit(1);
  });
