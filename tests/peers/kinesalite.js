// Starts kinesalite on 127.0.0.1:PORT (argv[2]) with fast stream operations, for the tests.
const port = parseInt(process.argv[2] || '4567', 10);
require('kinesalite')({ createStreamMs: 20, deleteStreamMs: 20, updateStreamMs: 20, shardLimit: 100 })
  .listen(port, '127.0.0.1', () => console.log('kinesalite listening on 127.0.0.1:' + port));
