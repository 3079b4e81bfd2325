echo "#!/bin/sh"
echo "echo built"
